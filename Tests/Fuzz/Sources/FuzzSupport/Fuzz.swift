// What every fuzz target shares: the input written to a scratch file, the repository's fixtures, and the rule
// that bad input is a thrown GLMError with a one-line message (anything else stops the fuzzer as a crash).
import CFuzzerDriver
import Foundation
import GLMCore

public enum Fuzz {
    /// The repository root (this file is Tests/Fuzz/Sources/FuzzSupport/Fuzz.swift).
    public static let repository: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<5 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// A scratch directory of this process in /dev/shm (else /tmp), removed at exit.
    public static let directory: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let dir = "\(base)/glmfuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: Fuzz.directory) }
        return dir
    }()

    /// A model directory inside the scratch directory, for targets that read a directory's files.
    public static let modelDirectory: String = {
        let dir = "\(directory)/model"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// Runs libFuzzer (its flags and corpus directories or input files in `argv`) on the target's
    /// `LLVMFuzzerTestOneInput`.
    public static func runDriver(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
        glmfuzz_run_driver(argc, argv)
    }

    /// The input as bytes.
    public static func bytes(_ data: UnsafePointer<UInt8>, _ size: Int) -> Data { Data(bytes: data, count: size) }

    /// Writes the input to `name` in the scratch directory (replacing the previous input) and returns its path.
    public static func file(_ data: UnsafePointer<UInt8>, _ size: Int, name: String) -> String {
        let path = "\(directory)/\(name)"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0, "fuzz: cannot write \(path)")
        var written = 0
        while written < size {
            let n = write(fd, data + written, size - written)
            precondition(n > 0, "fuzz: cannot write \(path)")
            written += n
        }
        close(fd)
        return path
    }

    /// Whether a GLMError message spanning lines counts as a finding (GLMFUZZ_ONE_LINE=1).
    static let oneLine = ProcessInfo.processInfo.environment["GLMFUZZ_ONE_LINE"] == "1"

    /// Runs `body`: returning or throwing a `GLMError` is fine; any other error is a finding (a trap, so that
    /// libFuzzer saves the input).
    public static func expectGLMError(_ what: String, _ body: () throws -> Void) {
        do { try body() } catch let e as GLMError {
            if oneLine && e.message.contains(where: \.isNewline) { fatalError("\(what): GLMError message spans lines: \(e.message)") }
        } catch {
            fatalError("\(what): threw \(type(of: error)) instead of a GLMError: \(error)")
        }
    }

    /// Short texts the tokenizer targets encode: ASCII, CJK, emoji, special-token spellings, cut and invalid UTF-8.
    public static let sampleTexts: [String] = [
        "", "Hello, world!", "  leading spaces and\ttabs\n\nnew lines", "你好，世界", "emoji 👩‍👩‍👧 ok",
        "[gMASK]<sop><|user|>\nhi<|assistant|>", "12345 678.9", "don't I'll", String(decoding: [0xE4, 0xBD, 0x61, 0xFF], as: UTF8.self),
    ]
}
