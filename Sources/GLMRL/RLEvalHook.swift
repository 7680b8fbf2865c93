// Evaluation of an RL run every rl.eval.every versions on a held-out prompt file: k samples per prompt at the eval
// temperature; pass@1 (the mean of the task metric over samples), pass@k (any sample right) and the mean reward,
// the task metric scored apart from the training reward. Logged as eval/rl/<metric> at the version's step.
import Foundation
import GLMCore
import GLMIO
import GLMModel
import GLMTraining

public final class RLEvalHook: EvaluationHook {
    public let name = "rl"
    let prompts: RLPrompts
    let config: RLConfig.Eval
    let reward: RewardSpec
    let tokenizer: GLMTokenizer
    let maxNewTokens: Int
    let stops: Set<Int32>
    let seed: UInt64
    var warn: (String) -> Void = { _ in }

    init(prompts: RLPrompts, config: RLConfig.Eval, reward: RewardSpec, tokenizer: GLMTokenizer, maxNewTokens: Int,
         stops: Set<Int32>, seed: UInt64) {
        self.prompts = prompts; self.config = config; self.reward = reward; self.tokenizer = tokenizer
        self.maxNewTokens = maxNewTokens; self.stops = stops; self.seed = seed
    }

    public func evaluate(_ context: EvaluationContext) throws -> [String: Double] {
        let generator = TextGenerator(model: context.model)
        let sampling = config.temperature == 0 ? SamplingParameters.greedy : SamplingParameters(temperature: config.temperature)
        var pass1 = 0.0, passK = 0.0, rewardSum = 0.0, n = 0
        for i in 0..<prompts.count {
            let out = Autograd.noGrad {
                generator.generate(prompts: Array(repeating: prompts.tokens[i], count: config.samples), maxNewTokens: maxNewTokens,
                                   sampling: sampling, seed: ExampleOrder.mix(seed, UInt64(i), 0xE7A1), stopTokens: stops)
            }
            let inputs = out.map { RewardInput(prompt: prompts.texts[i], response: tokenizer.decode($0.tokens, skipSpecialTokens: true),
                                               answer: prompts.answers[i]) }
            var w: [String] = []
            let metric = config.metric.score(inputs, warnings: &w)
            let rewards = reward.score(inputs, warnings: &w)
            for m in w { warn(m) }
            pass1 += metric.reduce(0, +) / Double(metric.count)
            passK += metric.contains { $0 > 0 } ? 1 : 0
            rewardSum += rewards.reduce(0, +); n += rewards.count
        }
        let p = Double(prompts.count)
        var out = ["pass@\(config.samples)": passK / p, "reward_mean": rewardSum / Double(max(n, 1)), "prompts": p]
        out["pass@1"] = pass1 / p  // with one sample, pass@k is pass@1
        return out
    }

    public func provides(metric: String) -> Bool { ["pass@1", "pass@\(config.samples)", "reward_mean", "prompts"].contains(metric) }
}
