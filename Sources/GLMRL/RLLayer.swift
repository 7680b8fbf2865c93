// The asynchronous RL layer: rollout worker, rewards, trainer side and the on-disk exchange (later issues).
import GLMTraining

public enum GLMRLLayer {}
