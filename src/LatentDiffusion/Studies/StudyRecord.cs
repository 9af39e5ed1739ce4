using System.Text.Json.Serialization;

namespace LatentDiffusion.Studies;

/// <summary>One evaluation of one training run of a study: a configuration, a seed, a step. One line of <c>results.jsonl</c>.</summary>
public sealed record StudyRecord
{
    /// <summary>The configuration's name.</summary>
    [JsonPropertyName("config")] public required string Configuration { get; init; }
    /// <summary>The run's seed (initial weights, data order, every training draw).</summary>
    [JsonPropertyName("seed")] public required long Seed { get; init; }
    /// <summary>Training steps done when evaluated.</summary>
    [JsonPropertyName("step")] public required long Step { get; init; }
    /// <summary>Training FLOPs spent so far: steps × batch × 3 × forward FLOPs per image.</summary>
    [JsonPropertyName("train_flops")] public required double TrainingFlops { get; init; }
    /// <summary>Wall time of training so far (seconds; time lost to an interrupted segment is not counted).</summary>
    [JsonPropertyName("train_seconds")] public required double TrainingSeconds { get; init; }
    /// <summary>Images per second while the evaluator sampled (sampling and decoding, all guidance passes).</summary>
    [JsonPropertyName("images_per_second")] public required double ImagesPerSecond { get; init; }
    /// <summary>The evaluator's scores.</summary>
    [JsonPropertyName("metrics")] public required IReadOnlyDictionary<string, double> Metrics { get; init; }
}
