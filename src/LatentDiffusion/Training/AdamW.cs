using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>
/// AdamW (Loshchilov and Hutter), written out so its whole state is plain tensors that a run directory stores in
/// safetensors and restores exactly. Defaults are DiT's: lr 1e-4, betas (0.9, 0.999), eps 1e-8, no weight decay.
/// Parameters are the float32 master weights, laid out in one buffer (<see cref="FlatParameters"/>), and so are the
/// moment estimates: a step is a few element-wise operations over the whole model instead of a few per parameter
/// (the same arithmetic element by element, so the same numbers). The state is saved per parameter name.
/// </summary>
internal sealed class AdamW : IDisposable
{
    readonly FlatParameters _flat;
    readonly bool _ownsLayout;
    readonly Tensor _expAvg, _expAvgSq;
    readonly Tensor[] _expAvgViews, _expAvgSqViews;

    public double LearningRate { get; set; }
    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Eps { get; }
    public double WeightDecay { get; }
    public long Step { get; private set; }
    /// <summary>The trained parameters and their gradients, each in one buffer.</summary>
    public FlatParameters Parameters => _flat;

    /// <param name="parameters">The trained parameters, laid out.</param>
    /// <param name="ownsLayout">Dispose the layout's buffers with the optimizer.</param>
    public AdamW(FlatParameters parameters, double lr = 1e-4, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 0.0, bool ownsLayout = false)
    {
        _flat = parameters;
        _ownsLayout = ownsLayout;
        LearningRate = lr; Beta1 = beta1; Beta2 = beta2; Eps = eps; WeightDecay = weightDecay;
        _expAvg = torch.zeros_like(parameters.Values).DetachFromDisposeScope();
        _expAvgSq = torch.zeros_like(parameters.Values).DetachFromDisposeScope();
        _expAvgViews = Enumerable.Range(0, parameters.Names.Count).Select(i => parameters.View(_expAvg, i).DetachFromDisposeScope()).ToArray();
        _expAvgSqViews = Enumerable.Range(0, parameters.Names.Count).Select(i => parameters.View(_expAvgSq, i).DetachFromDisposeScope()).ToArray();
    }

    /// <summary>AdamW over a module's trained parameters, which it lays out in one buffer (<see cref="FlatParameters.Of(nn.Module)"/>).</summary>
    public static AdamW For(nn.Module module, double lr = 1e-4, double weightDecay = 0.0, double beta1 = 0.9, double beta2 = 0.999) =>
        new(FlatParameters.Of(module), lr, beta1, beta2, weightDecay: weightDecay, ownsLayout: true);

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
        var (p, g, m, v) = (_flat.Values, _flat.Gradients, _expAvg, _expAvgSq);
        if (WeightDecay != 0) p.mul_(decayFactor);
        m.mul_(beta1).add_(g, alpha: oneMinusBeta1);
        v.mul_(beta2).addcmul_(g, g, value: oneMinusBeta2);
        var denom = v.sqrt().div_(bias2Root).add_(eps);
        p.addcdiv_(m, denom, value: minusStep);
    }

    public void ZeroGrad()
    {
        using var _ = torch.no_grad();
        _flat.Gradients.zero_();
    }

    /// <summary>The state as named tensors (for a run directory), plus the step count.</summary>
    public Dictionary<string, Tensor> StateTensors()
    {
        var d = new Dictionary<string, Tensor>();
        for (int i = 0; i < _flat.Names.Count; i++)
        {
            d["exp_avg." + _flat.Names[i]] = _expAvgViews[i];
            d["exp_avg_sq." + _flat.Names[i]] = _expAvgSqViews[i];
        }
        d["step"] = torch.tensor(Step, device: torch.CPU);
        return d;
    }

    public void LoadState(IReadOnlyDictionary<string, Tensor> state, string source)
    {
        using var _ = torch.no_grad();
        for (int i = 0; i < _flat.Names.Count; i++)
        {
            string name = _flat.Names[i];
            if (!state.TryGetValue("exp_avg." + name, out var m) || !state.TryGetValue("exp_avg_sq." + name, out var v))
                throw new LdmException($"optimizer state in '{source}' lacks '{name}'; the run directory belongs to another model, start a new run.");
            _expAvgViews[i].copy_(m);
            _expAvgSqViews[i].copy_(v);
        }
        Step = state["step"].item<long>();
    }

    public void Dispose()
    {
        foreach (var t in _expAvgViews.Concat(_expAvgSqViews)) t.Dispose();
        _expAvg.Dispose();
        _expAvgSq.Dispose();
        if (_ownsLayout) _flat.Dispose();
    }
}
