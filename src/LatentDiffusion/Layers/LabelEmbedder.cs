using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LatentDiffusion.Layers;

/// <summary>
/// Embeds class labels, with one extra "null class" row (id = <see cref="NumClasses"/>) when label dropout is on,
/// for classifier-free guidance. Parameter: <c>embedding_table</c>.
/// </summary>
internal sealed class LabelEmbedder : nn.Module<Tensor, Tensor>
{
    private readonly Embedding embedding_table;

    public int NumClasses { get; }
    public double DropoutProb { get; }

    /// <summary>The id of the null (unconditional) class, = num_classes.</summary>
    public int NullClass => NumClasses;

    /// <summary>How many ids the table accepts: num_classes, plus the null class when dropout is on.</summary>
    public int TableSize { get; }

    public LabelEmbedder(int numClasses, int hiddenSize, double dropoutProb) : base(nameof(LabelEmbedder))
    {
        NumClasses = numClasses;
        DropoutProb = dropoutProb;
        TableSize = numClasses + (dropoutProb > 0 ? 1 : 0);
        embedding_table = nn.Embedding(TableSize, hiddenSize);
        RegisterComponents();
    }

    public Embedding Table => embedding_table;

    /// <summary>Embeds labels as they are (no dropout).</summary>
    public override Tensor forward(Tensor labels) => forward(labels, train: false);

    /// <param name="labels">(N) int64 class ids, the null id allowed.</param>
    /// <param name="train">When true and dropout is on, each label is replaced by the null class with probability dropout.</param>
    /// <param name="generator">Generator for the dropout draws (null: torch's default generator, as the official code).</param>
    /// <param name="forceDropIds">(N) tensor, 1 where the label must be replaced by the null class; overrides the random draw.</param>
    public Tensor forward(Tensor labels, bool train, Generator? generator = null, Tensor? forceDropIds = null)
    {
        CheckRange(labels);
        using var scope = torch.NewDisposeScope();
        var ids = labels.to(ScalarType.Int64);
        if ((train && DropoutProb > 0) || forceDropIds is not null)
        {
            if (TableSize == NumClasses)
                throw new LdmException("labels cannot be dropped: the model was built with class_dropout_prob 0 and has no null class; build it with class_dropout_prob > 0.");
            Tensor drop = forceDropIds is not null
                ? forceDropIds.to(labels.device).eq(1)
                : torch.rand(new[] { labels.shape[0] }, device: torch.CPU, generator: generator).to(labels.device) < DropoutProb;   // CPU draw: same on every device
            ids = torch.where(drop, torch.full_like(ids, NullClass), ids);
        }
        return embedding_table.forward(ids).MoveToOuterDisposeScope();
    }

    void CheckRange(Tensor labels)
    {
        if (labels.dim() != 1)
            throw new LdmException($"class labels must be a 1-D tensor (N), got shape [{string.Join(",", labels.shape)}]; pass one class id per sample.");
        if (labels.is_floating_point())
            throw new LdmException("class labels must be integer ids, got a floating-point tensor; pass an int64 tensor.");
        if (labels.NumberOfElements == 0) return;
        long min = labels.min().item<long>(), max = labels.max().item<long>();
        if (min < 0 || max >= TableSize)
            throw new LdmException($"class id {(min < 0 ? min : max)} is out of range: this model knows ids 0..{TableSize - 1}{(TableSize > NumClasses ? $" ({NullClass} = null class)" : "")}; pass labels in that range.");
    }
}
