// The GLM model layer: configuration and decoder (see issue "GLM models from Hugging Face checkpoints").
// It takes named tensors and a configuration and never reads files.
import GLMCore

/// Version of the model layer's tensor naming scheme (Hugging Face GLM names, reference/glm.md §B.4).
public enum GLMModelLayer {
    public static let namingScheme = "transformers-glm"
}
