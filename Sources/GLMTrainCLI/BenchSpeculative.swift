// `glm-train bench speculative`: greedy decoding with and without MTP self-speculation on one model, batch 1 —
// tokens/s of each, the speed-up, and how many drafts the main model accepted. The two outputs must be equal
// token for token (the benchmark stops otherwise).
import ArgumentParser
import Foundation
import GLMCore
import GLMIO
import GLMModel

struct BenchSpeculative: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "speculative",
        abstract: "Greedy decode tokens/s with and without MTP self-speculation (batch 1), and the draft acceptance rate.")
    @Option(help: "A glm4_moe model directory with an MTP layer (default: a random tiny MoE, whose drafts are rarely right).")
    var model: String?
    @Option(help: "JSONL of {\"text\": ...} (needs the model's tokenizer) or {\"tokens\": [...]} lines; each line's first --prompt-length tokens are a prompt (default: random tokens).")
    var prompts: String?
    @Option(help: "Prompts to run.") var count = 8
    @Option(help: "Tokens per prompt.") var promptLength = 32
    @Option(help: "New tokens per prompt.") var newTokens = 64
    @Option(help: "Timed repetitions (the best is reported).") var repeats = 2

    /// The random tiny MoE: vocab 2048, hidden 256, 4 layers (1 dense), 16 experts top-4, one MTP layer.
    static func randomModel() throws -> Glm4MoeForCausalLM {
        let c = Glm4MoeConfig(vocabSize: 2048, hiddenSize: 256, intermediateSize: 768, numHiddenLayers: 4, numAttentionHeads: 4,
                              numKeyValueHeads: 2, headDim: 64, maxPositionEmbeddings: 1024, moeIntermediateSize: 128,
                              numExpertsPerTok: 4, nRoutedExperts: 16, nGroup: 4, topkGroup: 2, useQkNorm: true,
                              eosTokenIds: [], numNextnPredictLayers: 1)
        let m = try Glm4MoeForCausalLM(config: c, seed: 0)
        try m.initializeMTPLayer(seed: 1)
        return m
    }

    func validate() throws {
        try checkBenchCount("--count", count, 1...1024)
        try checkBenchCount("--prompt-length", promptLength, 1...4096)
        try checkBenchCount("--new-tokens", newTokens, 2...4096)
        try checkBenchCount("--repeats", repeats, 1...1000)
    }

    func run() throws {
        let loaded: any CausalLanguageModel = try model.map { try ModelDirectory.loadModel($0) } ?? Self.randomModel()
        guard let m = loaded as? any MultiTokenPredictionModel, m.hasMTPLayer else {
            throw GLMError("\(model ?? "model"): a \(loaded.modelTypeName) model without an MTP layer cannot draft for itself")
        }
        let inputs = try promptIds(m)
        let plainGen = TextGenerator(model: m), specGen = SpeculativeGenerator(model: m)
        _ = plainGen.generate(prompts: [inputs[0]], maxNewTokens: 2, stopTokens: [])  // warm-up
        var bestPlain = Double.infinity, bestSpec = Double.infinity
        var stats = SpeculativeStats(), produced = 0
        for r in 0..<repeats {
            var t0 = Stopwatch.now()
            let plain = inputs.map { plainGen.generate(prompts: [$0], maxNewTokens: newTokens, stopTokens: [])[0].tokens }
            bestPlain = min(bestPlain, Stopwatch.now() - t0)
            t0 = Stopwatch.now()
            let spec = inputs.map { specGen.generate(prompt: $0, maxNewTokens: newTokens, stopTokens: []) }
            bestSpec = min(bestSpec, Stopwatch.now() - t0)
            for (i, (a, b)) in zip(plain, spec).enumerated() where a != b.0.tokens {
                throw GLMError("prompt \(i + 1): speculative decoding gave \(b.0.tokens.prefix(12)) where greedy gave \(a.prefix(12))")
            }
            if r == 0 {
                for s in spec { stats.drafted += s.1.drafted; stats.accepted += s.1.accepted; stats.mainPasses += s.1.mainPasses }
                produced = plain.map(\.count).reduce(0, +)
            }
        }
        print("bench speculative — \(model ?? "random tiny glm4_moe (vocab 2048, hidden 256, 4 layers, 16 experts top-4, 1 MTP layer)"), batch 1, \(inputs.count) prompts of \(promptLength) tokens, \(newTokens) new tokens, greedy, OpenBLAS \(BLAS.coreName)")
        print("outputs identical: yes (\(produced) tokens)")
        print(String(format: "greedy       %8.1f tok/s (prefill included)", Double(produced) / bestPlain))
        print(String(format: "speculative  %8.1f tok/s   speed-up %.2f×", Double(produced) / bestSpec, bestPlain / bestSpec))
        print(String(format: "drafts accepted %d/%d = %.1f%%; %.2f tokens per main-model pass after the prompt", stats.accepted, stats.drafted,
                     100 * stats.acceptanceRate, Double(produced - inputs.count) / Double(max(stats.mainPasses, 1))))
    }

    func promptIds(_ m: any CausalLanguageModel) throws -> [[Int32]] {
        let vocab = m.configuration.vocabSize
        guard let prompts else {
            var gen = SeededGenerator(seed: 3)
            return (0..<count).map { _ in (0..<promptLength).map { _ in Int32(gen.next() % UInt64(vocab)) } }
        }
        let tokenizer = try model.flatMap { dir in
            FileManager.default.fileExists(atPath: dir + "/tokenizer.json") ? try GLMTokenizer.load(directory: dir) : nil
        }
        var out: [[Int32]] = []
        for line in try String(contentsOfFile: prompts, encoding: .utf8).split(separator: "\n") where out.count < count {
            guard let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            var ids: [Int32]
            if let t = obj["tokens"] as? [Int] { ids = t.map(Int32.init) }
            else if let text = obj["text"] as? String {
                guard let tokenizer else { throw GLMError("\(prompts): text lines need the model directory's tokenizer.json") }
                ids = tokenizer.encode(text, addSpecialTokens: true)
            } else { continue }
            ids = Array(ids.prefix(promptLength))
            guard !ids.isEmpty else { continue }
            try m.checkTokenIds(ids, source: prompts)
            out.append(ids)
        }
        guard !out.isEmpty else { throw GLMError("\(prompts): no prompt lines ({\"text\": ...} or {\"tokens\": [...]})") }
        return out
    }
}
