using System.Text.Json.Serialization;

namespace LatentDiffusion.Transformers;

/// <summary>How a Transformer block receives the timestep and the condition (the DiT paper's block ablation).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<BlockType>))]
public enum BlockType
{
    /// <summary>Time and condition tokens sit in the sequence beside the patch tokens; plain pre-norm blocks.</summary>
    [JsonStringEnumMemberName("in_context")] InContext,
    /// <summary>DiT: adaptive LayerNorm with zero-initialised gates, driven by time + class embedding.</summary>
    [JsonStringEnumMemberName("adaln_zero")] AdaLnZero,
    /// <summary>Patch tokens attend to the [time, condition] sequence through an extra cross-attention sublayer.</summary>
    [JsonStringEnumMemberName("cross_attention")] CrossAttention,
    /// <summary>
    /// MM-DiT (Stable Diffusion 3): image and condition tokens attend in one sequence but each modality has its own
    /// weights, and both are adaLN-modulated by time + pooled condition.
    /// </summary>
    [JsonStringEnumMemberName("joint_attention")] JointAttention,
}
