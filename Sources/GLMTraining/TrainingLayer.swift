// The training layer: objectives, LoRA, optimizers, schedules, the trainer loop (later issues).
import GLMCore
import GLMIO

public enum GLMTrainingLayer {}
