// libFuzzer target: a tokenizer.json loaded with GLMTokenizer.load(tokenizerJSON:), then a few texts encoded,
// decoded, and looked up token by token.
import FuzzSupport
import FuzzTokenizerSupport
import GLMIO

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let path = Fuzz.file(data, size, name: "tokenizer.json")
    Fuzz.expectGLMError("tokenizer.json") {
        let tok = try GLMTokenizer.load(tokenizerJSON: path)
        TokenizerExercise.run(tok)
    }
    return 0
}

/// The process entry point SwiftPM links this executable with: libFuzzer's driver.
@_cdecl("fuzz_tokenizer_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv)
}
