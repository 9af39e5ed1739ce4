using static TorchSharp.torch;

namespace LatentDiffusion.Diffusion;

/// <summary>
/// A denoising network as the diffusion sees it: x_t (N, C, ...) and int64 timesteps t (N,) of the ORIGINAL process
/// → its prediction (N, C, ...) or, with a learned variance, (N, 2C, ...). Conditioning (labels, text) is bound by the
/// closure that builds the delegate. The output may be in a reduced precision; the diffusion casts it up.
/// </summary>
public delegate Tensor Denoiser(Tensor x, Tensor t);
