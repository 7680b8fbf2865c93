// libFuzzer target: a tiktoken rank file (glm-4-9b-chat's `tokenizer.model`, lines "base64(bytes) rank") loaded
// with GLMTokenizer.load(tiktokenRanks:), with GLM-4's special tokens numbered after the ranks; then a few texts
// encoded, decoded, and looked up token by token.
import FuzzSupport
import FuzzTokenizerSupport
import GLMIO

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let path = Fuzz.file(data, size, name: "tokenizer.model")
    Fuzz.expectGLMError("tokenizer.model") {
        let tok = try GLMTokenizer.load(tiktokenRanks: path)
        TokenizerExercise.run(tok)
    }
    return 0
}

/// The process entry point SwiftPM links this executable with: libFuzzer's driver.
@_cdecl("fuzz_tiktoken_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv)
}
