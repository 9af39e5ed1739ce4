using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>
/// AdamW (Loshchilov and Hutter), written out so its whole state is plain tensors that a run directory stores in
/// safetensors and restores exactly. Defaults are DiT's: lr 1e-4, betas (0.9, 0.999), eps 1e-8, no weight decay.
/// Parameters are the float32 master weights.
/// </summary>
internal sealed class AdamW : IDisposable
{
    readonly (string name, Tensor param)[] _params;
    readonly Dictionary<string, Tensor> _expAvg = new(), _expAvgSq = new();

    public double LearningRate { get; set; }
    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Eps { get; }
    public double WeightDecay { get; }
    public long Step { get; private set; }

    public AdamW(IEnumerable<(string name, Tensor param)> parameters, double lr = 1e-4, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 0.0)
    {
        _params = parameters.Where(p => p.param.requires_grad).ToArray();
        LearningRate = lr; Beta1 = beta1; Beta2 = beta2; Eps = eps; WeightDecay = weightDecay;
        foreach (var (name, p) in _params)
        {
            _expAvg[name] = torch.zeros_like(p).DetachFromDisposeScope();
            _expAvgSq[name] = torch.zeros_like(p).DetachFromDisposeScope();
        }
    }

    public static AdamW For(nn.Module module, double lr = 1e-4, double weightDecay = 0.0, double beta1 = 0.9, double beta2 = 0.999) =>
        new(module.named_parameters().Select(p => (p.name, p.parameter as Tensor)), lr, beta1, beta2, weightDecay: weightDecay);

    /// <summary>Applies one update from the gradients currently stored on the parameters.</summary>
    public void StepOnce()
    {
        Step++;
        double bias1 = 1 - Math.Pow(Beta1, Step), bias2 = 1 - Math.Pow(Beta2, Step);
        double stepSize = LearningRate / bias1;
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        // Every Scalar made once per step and disposed with it: an implicit Scalar (from a double) can be finalized by
        // the GC while libtorch still reads it (see Ema.Update).
        using Scalar decayFactor = (1 - LearningRate * WeightDecay).ToScalar(), beta1 = Beta1.ToScalar(), oneMinusBeta1 = (1 - Beta1).ToScalar(),
            beta2 = Beta2.ToScalar(), oneMinusBeta2 = (1 - Beta2).ToScalar(), bias2Root = Math.Sqrt(bias2).ToScalar(), eps = Eps.ToScalar(),
            minusStep = (-stepSize).ToScalar();
        foreach (var (name, p) in _params)
        {
            var g = p.grad;
            if (g is null) continue;
            if (WeightDecay != 0) p.mul_(decayFactor);
            var m = _expAvg[name];
            var v = _expAvgSq[name];
            m.mul_(beta1).add_(g, alpha: oneMinusBeta1);
            v.mul_(beta2).addcmul_(g, g, value: oneMinusBeta2);
            var denom = v.sqrt().div_(bias2Root).add_(eps);
            p.addcdiv_(m, denom, value: minusStep);
        }
    }

    public void ZeroGrad()
    {
        foreach (var (_, p) in _params) p.grad?.zero_();
    }

    /// <summary>The state as named tensors (for a run directory), plus the step count.</summary>
    public Dictionary<string, Tensor> StateTensors()
    {
        var d = new Dictionary<string, Tensor>();
        foreach (var (name, _) in _params)
        {
            d["exp_avg." + name] = _expAvg[name];
            d["exp_avg_sq." + name] = _expAvgSq[name];
        }
        d["step"] = torch.tensor(Step, device: torch.CPU);
        return d;
    }

    public void LoadState(IReadOnlyDictionary<string, Tensor> state, string source)
    {
        using var _ = torch.no_grad();
        foreach (var (name, p) in _params)
        {
            if (!state.TryGetValue("exp_avg." + name, out var m) || !state.TryGetValue("exp_avg_sq." + name, out var v))
                throw new LdmException($"optimizer state in '{source}' lacks '{name}'; the run directory belongs to another model, start a new run.");
            _expAvg[name].copy_(m);
            _expAvgSq[name].copy_(v);
        }
        Step = state["step"].item<long>();
    }

    public void Dispose()
    {
        foreach (var t in _expAvg.Values) t.Dispose();
        foreach (var t in _expAvgSq.Values) t.Dispose();
    }
}
