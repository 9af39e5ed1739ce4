using System.Numerics;
using LatentDiffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>
/// AdamW (Loshchilov and Hutter), written out so its whole state is plain tensors that a run directory stores in
/// safetensors and restores exactly. Defaults are DiT's: lr 1e-4, betas (0.9, 0.999), eps 1e-8, no weight decay.
/// Parameters are the float32 master weights, laid out in one buffer (<see cref="FlatParameters"/>), and so are the
/// moment estimates: a step is a few element-wise operations over the whole model instead of a few per parameter
/// (on the CPU a single fused pass, <see cref="StepOnCpu"/>). The state is saved per parameter name.
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
        var update = new Update((float)(1 - LearningRate * WeightDecay), (float)Beta1, (float)(1 - Beta1), (float)Beta2, (float)(1 - Beta2),
            (float)(1 / Math.Sqrt(bias2)), (float)Eps, (float)(LearningRate / bias1));
        var (p, g, m, v) = (_flat.Values, _flat.Gradients, _expAvg, _expAvgSq);
        using var _ = torch.no_grad();
        if (p.device_type == DeviceType.CPU && p.dtype == ScalarType.Float32) StepOnCpu(update, p, g, m, v);
        else StepWithTorch(update, p, g, m, v);
    }

    /// <summary>The constants of one step: decoupled decay factor, betas, bias corrections, eps and step size.</summary>
    readonly record struct Update(float Decay, float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2, float InvBias2Root, float Eps, float StepSize);

    /// <summary>
    /// The update as element-wise tensor operations (any device): about ten passes over the model's memory.
    /// </summary>
    static void StepWithTorch(Update u, Tensor p, Tensor g, Tensor m, Tensor v)
    {
        using var scope = torch.NewDisposeScope();
        // Scalars made once per step and disposed with it: an implicit Scalar (from a double) can be finalized by the GC
        // while libtorch still reads it (see Ema.Update).
        using Scalar decay = u.Decay.ToScalar(), beta1 = u.Beta1.ToScalar(), oneMinusBeta1 = u.OneMinusBeta1.ToScalar(), beta2 = u.Beta2.ToScalar(),
            oneMinusBeta2 = u.OneMinusBeta2.ToScalar(), invBias2Root = u.InvBias2Root.ToScalar(), eps = u.Eps.ToScalar(), minusStep = (-u.StepSize).ToScalar();
        if (u.Decay != 1) p.mul_(decay);
        m.mul_(beta1).add_(g, alpha: oneMinusBeta1);
        v.mul_(beta2).addcmul_(g, g, value: oneMinusBeta2);
        var denom = v.sqrt().mul_(invBias2Root).add_(eps);
        p.addcdiv_(m, denom, value: minusStep);
    }

    /// <summary>
    /// The same update on the CPU in one pass over the weights, gradients and moments (read four arrays, write three),
    /// split into contiguous ranges over torch's threads. The optimizer is bound by memory traffic, so one pass instead
    /// of ten is what makes it fast; each element's arithmetic does not depend on the split, so runs stay reproducible.
    /// </summary>
    static void StepOnCpu(Update u, Tensor p, Tensor g, Tensor m, Tensor v)
    {
        const long Chunk = 1L << 26; // elements per span: TorchSharp's byte spans have int lengths
        long n = p.NumberOfElements;
        int workers = Math.Max(1, torch.get_num_threads());
        for (long start = 0; start < n; start += Chunk)
        {
            long count = Math.Min(Chunk, n - start);
            using var pc = p.narrow(0, start, count);
            using var gc = g.narrow(0, start, count);
            using var mc = m.narrow(0, start, count);
            using var vc = v.narrow(0, start, count);
            var (pp, gp, mp, vp) = (TensorMemory.Address(pc), TensorMemory.Address(gc), TensorMemory.Address(mc), TensorMemory.Address(vc));
            int parts = (int)Math.Min(workers, Math.Max(1, count / 65536));
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = workers }, part =>
            {
                long from = count * part / parts, to = count * (part + 1) / parts;
                unsafe { Kernel(u, (float*)pp + from, (float*)gp + from, (float*)mp + from, (float*)vp + from, (int)(to - from)); }
            });
        }
    }

    static unsafe void Kernel(Update u, float* p, float* g, float* m, float* v, int count)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int w = Vector<float>.Count;
            var decay = new Vector<float>(u.Decay);
            var b1 = new Vector<float>(u.Beta1);
            var c1 = new Vector<float>(u.OneMinusBeta1);
            var b2 = new Vector<float>(u.Beta2);
            var c2 = new Vector<float>(u.OneMinusBeta2);
            var inv = new Vector<float>(u.InvBias2Root);
            var eps = new Vector<float>(u.Eps);
            var step = new Vector<float>(u.StepSize);
            for (; i <= count - w; i += w)
            {
                var gi = Vector.Load(g + i);
                var mi = Vector.Load(m + i) * b1 + gi * c1;
                var vi = Vector.Load(v + i) * b2 + gi * gi * c2;
                var pi = Vector.Load(p + i) * decay - step * mi / (Vector.SquareRoot(vi) * inv + eps);
                mi.Store(m + i);
                vi.Store(v + i);
                pi.Store(p + i);
            }
        }
        for (; i < count; i++)
        {
            float gi = g[i];
            float mi = m[i] * u.Beta1 + gi * u.OneMinusBeta1;
            float vi = v[i] * u.Beta2 + gi * gi * u.OneMinusBeta2;
            p[i] = p[i] * u.Decay - u.StepSize * mi / (MathF.Sqrt(vi) * u.InvBias2Root + u.Eps);
            m[i] = mi;
            v[i] = vi;
        }
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
