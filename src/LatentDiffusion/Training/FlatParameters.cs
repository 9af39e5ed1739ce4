using TorchSharp;
using static TorchSharp.torch;

namespace LatentDiffusion.Training;

/// <summary>
/// A module's parameters laid out in one contiguous buffer, and their gradients in another, each parameter and its
/// <c>.grad</c> a view of its slice. Element-wise work over all weights (AdamW, EMA, the mixed-precision copies, a
/// gradient all-reduce) is then a few operations on two large tensors instead of a few per parameter, which saves
/// thousands of small kernel launches per step. The module keeps working as before: autograd adds into the gradient
/// views in place, and loading a state dict copies into the views.
/// <para>Moving the module afterwards (<c>.to(device or dtype)</c>) replaces its tensors and breaks the layout, so
/// lay it out after the move.</para>
/// </summary>
internal sealed class FlatParameters : IDisposable
{
    readonly Tensor[] _params;
    readonly Tensor? _gradients;

    /// <summary>The module whose parameters these are.</summary>
    public nn.Module Module { get; }
    /// <summary>The names of the laid-out parameters, in buffer order.</summary>
    public IReadOnlyList<string> Names { get; }
    /// <summary>Every laid-out parameter, concatenated.</summary>
    public Tensor Values { get; }
    /// <summary>Their gradients, in the same layout (zero until the first backward pass); only for trained parameters.</summary>
    public Tensor Gradients => _gradients ?? throw new InvalidOperationException("these parameters are not trained, so they have no gradient buffer");
    /// <summary>Where each parameter starts in the buffers.</summary>
    public IReadOnlyList<long> Offsets { get; }

    FlatParameters(nn.Module module, IReadOnlyList<string> names)
    {
        Module = module;
        Names = names;
        var byName = module.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        _params = names.Select(n => byName.TryGetValue(n, out var p) ? p
            : throw new ArgumentException($"the module has no parameter '{n}'", nameof(names))).ToArray();
        if (_params.Length == 0) throw new ArgumentException("no parameters to lay out", nameof(names));
        var dtype = _params[0].dtype;
        var device = _params[0].device;
        if (_params.Any(p => p.dtype != dtype || p.device_type != device.type || p.device_index != device.index))
            throw new ArgumentException("the parameters differ in dtype or device; lay out a module after moving it as a whole");
        var offsets = new long[_params.Length];
        long total = 0;
        for (int i = 0; i < _params.Length; i++) { offsets[i] = total; total += _params[i].numel(); }
        Offsets = offsets;
        using var _ = torch.no_grad();
        Values = torch.empty(total, dtype: dtype, device: device).DetachFromDisposeScope();
        // A copy kept only for averaging or inference (an EMA model) needs no gradient buffer.
        if (_params.Any(p => p.requires_grad)) _gradients = torch.zeros(total, dtype: dtype, device: device).DetachFromDisposeScope();
        for (int i = 0; i < _params.Length; i++)
        {
            var p = _params[i];
            using var value = View(Values, i);
            value.copy_(p);
            p.set_(value);
            // A parameter that is not trained (a fixed positional embedding) keeps no gradient.
            if (p.requires_grad) p.grad = View(_gradients!, i);
        }
    }

    /// <summary>Lays out the module's trained parameters (those requiring a gradient), in the module's order.</summary>
    public static FlatParameters Of(nn.Module module) =>
        new(module, module.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToArray());

    /// <summary>Lays out the named parameters of a module in the given order, to mirror another module's layout
    /// (an EMA copy, a bf16 copy), so that one buffer can be copied or blended into the other.</summary>
    public static FlatParameters Of(nn.Module module, IReadOnlyList<string> names) => new(module, names);

    /// <summary>The slice of a buffer of this layout (values, gradients or optimizer state) that belongs to parameter
    /// <paramref name="index"/>, shaped like it.</summary>
    public Tensor View(Tensor flat, int index) => flat.narrow(0, Offsets[index], _params[index].numel()).view(_params[index].shape);

    /// <summary>True when <paramref name="other"/> has this layout: the same names, sizes and order.</summary>
    public bool SameLayout(FlatParameters other) =>
        Names.SequenceEqual(other.Names) && _params.Zip(other._params).All(p => p.First.shape.SequenceEqual(p.Second.shape));

    public void Dispose()
    {
        Values.Dispose();
        _gradients?.Dispose();
    }
}
