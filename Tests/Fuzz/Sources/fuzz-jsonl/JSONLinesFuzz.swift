// libFuzzer target: a JSONL data file read with JSONLines.read, each line's "tokens"/"text" read, each line
// parsed as a chat conversation (ChatConversation, JSONValue), and the file read as pretraining, SFT, preference
// (DPO) and RL prompt data with the bundled tiny tokenizer, and as a run's metrics.jsonl that `plot` draws.
import FuzzSupport
import GLMIO
import GLMRL
import GLMTraining

let tokenizer = try! GLMTokenizer.load(tokenizerJSON: "\(Fuzz.repository)/Checkpoints/glm-tiny/tokenizer.json")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let path = Fuzz.file(data, size, name: "data.jsonl")
    Fuzz.expectGLMError("jsonl") {
        for line in try JSONLines.read(path) {
            Fuzz.expectGLMError("jsonl tokens") { _ = try line.intArray("tokens") }
            Fuzz.expectGLMError("jsonl text") { _ = try line.string("text") }
            Fuzz.expectGLMError("jsonl encode") { _ = try JSONLines.encode(line.object) }
        }
    }
    Fuzz.expectGLMError("chat lines") {
        for line in try TokenizedDataset.chatLines(path) {
            Fuzz.expectGLMError("chat json") {
                let value = try JSONValue.parse(line.text)
                _ = value.pythonJSON()
                _ = value.pythonJSON(indent: 2)
                _ = try ChatConversation(json: value)
            }
            Fuzz.expectGLMError("conversation") {
                let c = try TokenizedDataset.conversation(line, requireCompletion: false)
                try TokenizedDataset.checkConversation(c, line: line, template: .glm4)
                _ = try ChatTemplate.glm4.tokenize(c, tokenizer: tokenizer)
            }
        }
    }
    Fuzz.expectGLMError("pretraining") {
        _ = try TokenizedDataset.pretraining(path: path, tokenizer: tokenizer, endOfText: 0, vocabularySize: tokenizer.vocabularySize)
    }
    Fuzz.expectGLMError("sft") {
        _ = try TokenizedDataset.sft(path: path, tokenizer: tokenizer, template: .glm4, vocabularySize: tokenizer.vocabularySize)
    }
    Fuzz.expectGLMError("preference") {
        _ = try PreferenceData.read(path: path, tokenizer: tokenizer, template: .glm4, vocabularySize: tokenizer.vocabularySize, seqLen: 64)
    }
    Fuzz.expectGLMError("rl prompts") {
        _ = try RLPrompts(file: path, tokenizer: tokenizer, template: .glm4, maxPromptTokens: 64, limit: 16)
    }
    Fuzz.expectGLMError("metrics plot") {
        _ = try MetricsLog.read(path)
        _ = try MetricsPlot.writeAll(metrics: path, to: "\(Fuzz.directory)/plots")
    }
    return 0
}

/// The process entry point SwiftPM links this executable with: libFuzzer's driver.
@_cdecl("fuzz_jsonl_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv)
}
