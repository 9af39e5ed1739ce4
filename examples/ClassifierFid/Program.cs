// Fréchet distance between two folders of images, on the features of a domain classifier (classifier-FID), with
// precision/recall; with "inception" instead of a classifier path it is the standard FID of pytorch-fid (the Inception
// weights file is given by the LDM_INCEPTION_WEIGHTS environment variable).
// Usage: ClassifierFid <images A> <images B> [classifier.safetensors | inception]
using LatentDiffusion.Evaluation;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: ClassifierFid <images A> <images B> [classifier.safetensors | inception]");
    return 1;
}
string features = args.Length > 2 ? args[2] : "models/fashion-mnist-classifier.safetensors";

using IFeatureExtractor extractor = features == "inception"
    ? InceptionFeatureExtractor.Load(weightsPath: null)
    : ClassifierFeatureExtractor.Load(features);
var samples = new ImageFolderSampleSource(args[0], extractor.Channels);
var reference = EvaluationReference.FromImages(new ImageFolderSampleSource(args[1], extractor.Channels));

using var result = SampleEvaluator.Evaluate(extractor, samples, reference, new EvaluationOptions { BatchSize = 50 });
foreach (var (name, value) in result.Report.Metrics) Console.WriteLine($"{name}: {value:G5}");
return 0;
