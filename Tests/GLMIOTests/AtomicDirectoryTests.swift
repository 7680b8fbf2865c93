// Atomic directory publishing: publish / replace / pointer round trips, leftovers of killed writers cleaned up, and
// `glm-train export` SIGKILLed at random moments never leaving a half-written model directory.
import XCTest
import Foundation
import GLMCore
import GLMIO
import TestSupport

final class AtomicDirectoryTests: XCTestCase {
    var root = ""
    override func setUp() {
        root = NSTemporaryDirectory() + "glmtrain-atomicdir-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func files(_ dir: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for f in try FileManager.default.contentsOfDirectory(atPath: dir) {
            out[f] = try String(contentsOfFile: "\(dir)/\(f)", encoding: .utf8)
        }
        return out
    }
    func entries(_ dir: String) throws -> Set<String> { Set(try FileManager.default.contentsOfDirectory(atPath: dir)) }

    func testPublishReplaceAndPointerRoundTrip() throws {
        let dest = "\(root)/weights/v000001"
        XCTAssertNil(try AtomicDirectory.resolve(pointer: "\(root)/weights/latest"), "no pointer yet")
        try AtomicDirectory.publish(dest, pointer: "latest") { dir in
            XCTAssertNotEqual(dir, dest)
            XCTAssertTrue((dir as NSString).lastPathComponent.hasPrefix(AtomicDirectory.temporaryPrefix))
            XCTAssertFalse(FileManager.default.fileExists(atPath: dest), "nothing is visible while the directory is written")
            try AtomicFile.write(Data("a".utf8), to: "\(dir)/a.txt")
            try AtomicFile.makeDirectory("\(dir)/sub")
            try AtomicFile.write(Data("b".utf8), to: "\(dir)/sub/b.txt")
        }
        XCTAssertEqual(try entries(dest), ["a.txt", "sub"])
        XCTAssertEqual(try String(contentsOfFile: "\(dest)/a.txt", encoding: .utf8), "a")
        XCTAssertEqual(try String(contentsOfFile: "\(dest)/sub/b.txt", encoding: .utf8), "b")
        XCTAssertEqual(try AtomicDirectory.resolve(pointer: "\(root)/weights/latest"), dest)
        XCTAssertEqual(try String(contentsOfFile: "\(root)/weights/latest", encoding: .utf8), "v000001\n")

        // Replacing: the new directory whole, nothing of the old one, no temporary names left behind.
        try AtomicDirectory.publish(dest) { dir in try AtomicFile.write(Data("c".utf8), to: "\(dir)/c.txt") }
        XCTAssertEqual(try files(dest), ["c.txt": "c"])
        XCTAssertEqual(try entries("\(root)/weights"), ["v000001", "latest"])

        // A new version moves the pointer; the old version stays until someone removes it.
        let v2 = "\(root)/weights/v000002"
        try AtomicDirectory.publish(v2, pointer: "latest") { dir in try AtomicFile.write(Data("d".utf8), to: "\(dir)/d.txt") }
        XCTAssertEqual(try AtomicDirectory.resolve(pointer: "\(root)/weights/latest"), v2)
        XCTAssertEqual(try entries("\(root)/weights"), ["v000001", "v000002", "latest"])

        // A closure that throws leaves the older directory as it was, and the error names the destination.
        XCTAssertThrowsError(try AtomicDirectory.publish(v2) { dir in
            try AtomicFile.write(Data("half".utf8), to: "\(dir)/half.txt")
            throw GLMError("\(dir)/half.txt: disk full")
        }) { XCTAssertEqual(($0 as? GLMError)?.message, "\(v2)/half.txt: disk full") }
        XCTAssertEqual(try files(v2), ["d.txt": "d"])
        XCTAssertEqual(try entries("\(root)/weights"), ["v000001", "v000002", "latest"])

        // A file in the way is an error naming it, and stays untouched.
        FileManager.default.createFile(atPath: "\(root)/a-file", contents: Data("x".utf8))
        XCTAssertThrowsError(try AtomicDirectory.publish("\(root)/a-file") { _ in }) {
            XCTAssertEqual(($0 as? GLMError)?.message, "\(root)/a-file: exists and is not a directory")
        }
        XCTAssertEqual(try String(contentsOfFile: "\(root)/a-file", encoding: .utf8), "x")

        // Publishing through a symbolic link replaces the directory it points at and keeps the link.
        try FileManager.default.createSymbolicLink(atPath: "\(root)/link", withDestinationPath: "weights/v000001")
        try AtomicDirectory.publish("\(root)/link/") { dir in try AtomicFile.write(Data("e".utf8), to: "\(dir)/e.txt") }
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: "\(root)/link"), "weights/v000001")
        XCTAssertEqual(try files(dest), ["e.txt": "e"])
    }

    func testANameNearNameMaxCanBePublishedAndReplaced() throws {
        let dest = "\(root)/" + String(repeating: "m", count: 250)
        for text in ["1", "2"] {
            try AtomicDirectory.publish(dest) { dir in try AtomicFile.write(Data(text.utf8), to: "\(dir)/f") }
            XCTAssertEqual(try String(contentsOfFile: "\(dest)/f", encoding: .utf8), text)
        }
        XCTAssertEqual(try entries(root), [(dest as NSString).lastPathComponent])
    }

    func testPointerErrorsNameThePointerFile() throws {
        let pointer = "\(root)/latest"
        try AtomicFile.write(Data("../elsewhere\n".utf8), to: pointer)
        XCTAssertThrowsError(try AtomicDirectory.resolve(pointer: pointer)) {
            XCTAssertTrue(($0 as? GLMError)?.message.hasPrefix("\(pointer): expected the name of a directory") == true, "\($0)")
        }
        try AtomicFile.write(Data("v000009\n".utf8), to: pointer)
        XCTAssertThrowsError(try AtomicDirectory.resolve(pointer: pointer)) {
            XCTAssertTrue(($0 as? GLMError)?.message.hasPrefix("\(pointer): names v000009") == true, "\($0)")
        }
    }

    func testLeftoversOfDeadWritersAreRemovedAndLiveOnesKept() throws {
        // A process that has exited: its pid no longer runs.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run(); p.waitUntilExit()
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, 255)
        let host = String(cString: buf).replacingOccurrences(of: "-", with: "_").replacingOccurrences(of: "/", with: "_")
        let dead = "\(AtomicDirectory.temporaryPrefix)\(host)-\(p.processIdentifier)-1-model"
        let live = "\(AtomicDirectory.temporaryPrefix)\(host)-\(getppid())-2-model"
        let foreign = "\(AtomicDirectory.temporaryPrefix)otherhost-12-3-model"
        for d in [dead, live, foreign] {
            try AtomicFile.makeDirectory("\(root)/\(d)")
            try AtomicFile.write(Data("partial".utf8), to: "\(root)/\(d)/model.safetensors")
        }
        try AtomicDirectory.publish("\(root)/model") { dir in try AtomicFile.write(Data("{}".utf8), to: "\(dir)/config.json") }
        XCTAssertEqual(try entries(root), ["model", live, foreign], "only the dead local writer's directory is removed")
    }

    /// `glm-train export` (a merged full model, 8 MB of safetensors and the tokenizer files) killed with SIGKILL at
    /// random moments: afterwards the output is absent, the previous complete export or the new one — never a mix,
    /// never a partial file — and the leftovers are cleaned up by the next export.
    func testExportKilledAtRandomMomentsLeavesOldOrNewCompleteDirectory() throws {
        let tiny = "\(Fixtures.repositoryRoot)/Checkpoints/glm-tiny"
        let run = "\(root)/run"
        // A full fine-tune checkpoint: one changed tensor over the bundled model.
        let norm = try SafetensorsFile(path: "\(tiny)/model.safetensors").tensor("model.norm.weight")
        var ckpt = TrainingCheckpoint(tensors: ["model.norm.weight": Tensor(norm.scalars.map { $0 * 1.5 }, shape: norm.shape)],
                                      optimizerState: [:], step: 1)
        ckpt.metadata = ["base_model": tiny]
        _ = try CheckpointDirectory("\(run)/checkpoints").save(ckpt, keep: 1)
        func args(_ dtype: String, _ out: String) -> [String] {
            ["export", "--run", run, "--format", "merged", "--dtype", dtype, "--output", out]
        }

        // The two complete exports every state must equal.
        var references: [String: [String: Data]] = [:]
        var longest = 0.0
        for dtype in ["float32", "bfloat16"] {
            let out = "\(root)/ref-\(dtype)"
            let started = Date()
            let r = try GLMTrainBinary.run(args(dtype, out))
            longest = max(longest, Date().timeIntervalSince(started))
            XCTAssertEqual(r.status, 0, r.stderr)
            references[dtype] = try contents(out)
        }
        XCTAssertNotEqual(references["float32"], references["bfloat16"])
        XCTAssertEqual(Set(references["float32"]!.keys), ["config.json", "model.safetensors", "generation_config.json",
                                                          "tokenizer.json", "tokenizer_config.json"])

        let parent = "\(root)/exports", out = "\(parent)/model"
        try AtomicFile.makeDirectory(parent)
        var current: String? = nil
        var killedMidway = 0, states: Set<String> = []
        var generator = SystemRandomNumberGenerator()
        let deadline = Date().addingTimeInterval(12)
        var attempt = 0
        while Date() < deadline && attempt < 40 {
            let dtype = attempt % 2 == 0 ? "float32" : "bfloat16"
            attempt += 1
            let p = try GLMTrainBinary.start(args(dtype, out))
            // Kills spread over the whole export (its duration measured above), at most 300 ms in.
            usleep(UInt32.random(in: 0...UInt32(min(300_000, longest * 1.2e6)), using: &generator))
            let wasRunning = p.isRunning
            if wasRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            if wasRunning && p.terminationReason == .uncaughtSignal { killedMidway += 1 }
            else { XCTAssertEqual(p.terminationStatus, 0, "attempt \(attempt): export failed") }

            // The destination: absent, the previous complete export, or the new one.
            let state: String?
            if FileManager.default.fileExists(atPath: out) {
                let got = try contents(out)
                guard let match = references.first(where: { $0.value == got })?.key else {
                    XCTFail("attempt \(attempt): \(out) is neither complete export: \(got.keys.sorted()) ")
                    break
                }
                for f in got.keys where f.hasSuffix(".safetensors") { XCTAssertNoThrow(try SafetensorsFile(path: "\(out)/\(f)").allTensors()) }
                state = match
            } else {
                state = nil
            }
            XCTAssertTrue(state == current || state == dtype,
                          "attempt \(attempt): \(out) holds the \(state ?? "absent") export; expected \(current ?? "absent") or \(dtype)")
            states.insert(state ?? "absent")
            current = state
            // Nothing but the destination and temporary names of killed writers.
            for e in try entries(parent) where e != "model" {
                XCTAssertTrue(e.hasPrefix(AtomicDirectory.temporaryPrefix), "attempt \(attempt): unexpected \(e)")
            }
        }
        XCTAssertGreaterThan(killedMidway, 0, "no export was killed while it ran")

        // The next complete export cleans up after the killed ones.
        let r = try GLMTrainBinary.run(args("bfloat16", out))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try contents(out), references["bfloat16"])
        XCTAssertEqual(try entries(parent), ["model"], "leftovers of killed exports are removed")
        print("export killed \(killedMidway) of \(attempt) times; states seen: \(states.sorted())")
    }

    func contents(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for f in try FileManager.default.contentsOfDirectory(atPath: dir) {
            out[f] = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(f)"))
        }
        return out
    }
}
