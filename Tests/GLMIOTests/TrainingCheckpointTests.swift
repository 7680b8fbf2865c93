// HDF5 training checkpoints: bit-exact round trips, one-line rejection of torn/corrupt/foreign files,
// and the checkpoint directory's pruning, fallback to the previous valid checkpoint and tmp-file handling.
import XCTest
import Foundation
import GLMCore
import GLMIO

final class TrainingCheckpointTests: XCTestCase {
    var dir: String!
    override func setUp() {
        dir = NSTemporaryDirectory() + "glmtrain-ckpt-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    // MARK: helpers

    func bits(_ t: Tensor) -> [UInt32] { t.scalars.map(\.bitPattern) }

    func sample(step: Int = 42, seed: UInt64 = 1) -> TrainingCheckpoint {
        var gen = SeededGenerator(seed: seed)
        let special = Tensor([.nan, -.nan, Float(bitPattern: 0x7FA0_0001), Float(bitPattern: 0xFFC1_2345),
                              .infinity, -.infinity, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1.5],
                             shape: [2, 5])
        let tensors: [String: Tensor] = [
            "model.embed_tokens.weight": Tensor.randomNormal([7, 5], generator: &gen),
            "model.layers.0.self_attn.q_proj.weight": Tensor.randomNormal([3, 4, 2], generator: &gen),
            "model.norm.weight": Tensor.randomNormal([1], generator: &gen),
            "scale": Tensor(scalar: -3.25),
            "empty": Tensor(zeros: [0]),
            "empty.inner": Tensor(zeros: [2, 0, 3]),
            "special": special,
        ]
        var optimizer: [String: Tensor] = [:]
        for (name, t) in tensors.sorted(by: { $0.key < $1.key }) {  // dictionary order varies per instance
            optimizer["exp_avg/\(name)"] = Tensor.randomNormal(t.shape, generator: &gen)
            optimizer["exp_avg_sq/\(name)"] = Tensor.randomUniform(t.shape, generator: &gen)
        }
        optimizer["momentum/odd%name/.x"] = Tensor.randomNormal([4], generator: &gen)
        return TrainingCheckpoint(
            tensors: tensors, optimizerState: optimizer, step: step,
            scalars: ["lr": 3e-4, "schedule/position": 0.125, "nan": .nan, "inf": -.infinity, "neg0": -0.0,
                      "tiny": .leastNonzeroMagnitude],
            rngState: SeededGenerator(seed: seed &+ 99).stateWords + [0, .max],
            dataCursor: ["epoch": 3, "index": 123_456_789_012, "negative": -1],
            metadata: ["recipe": "model: glm-4\nlr: 3e-4\n  nested: [1, 2]\n", "model_type": "glm4", "empty": "",
                       "unicode": "Grüße – 你好 🚀", ".hidden/key": "x\0y"])
    }

    func assertSame(_ a: TrainingCheckpoint, _ b: TrainingCheckpoint, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(a.tensors.keys), Set(b.tensors.keys), file: file, line: line)
        for (name, t) in a.tensors {
            guard let u = b.tensors[name] else { continue }
            XCTAssertEqual(t.shape, u.shape, name, file: file, line: line)
            XCTAssertEqual(bits(t), bits(u), name, file: file, line: line)
        }
        XCTAssertEqual(Set(a.optimizerState.keys), Set(b.optimizerState.keys), file: file, line: line)
        for (name, t) in a.optimizerState {
            guard let u = b.optimizerState[name] else { continue }
            XCTAssertEqual(t.shape, u.shape, name, file: file, line: line)
            XCTAssertEqual(bits(t), bits(u), name, file: file, line: line)
        }
        XCTAssertEqual(a.step, b.step, file: file, line: line)
        XCTAssertEqual(a.scalars.mapValues(\.bitPattern), b.scalars.mapValues(\.bitPattern), file: file, line: line)
        XCTAssertEqual(a.rngState, b.rngState, file: file, line: line)
        XCTAssertEqual(a.dataCursor, b.dataCursor, file: file, line: line)
        XCTAssertEqual(a.metadata, b.metadata, file: file, line: line)
    }

    /// `read(from: path)` throws a one-line GLMError that starts with the path and contains `expected`.
    func assertRejected(_ path: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try TrainingCheckpoint.read(from: path), file: file, line: line) { error in
            guard let e = error as? GLMError else { return XCTFail("not a GLMError: \(error)", file: file, line: line) }
            XCTAssertTrue(e.message.hasPrefix(path + ":"), e.message, file: file, line: line)
            XCTAssertFalse(e.message.contains("\n"), e.message, file: file, line: line)
            XCTAssertTrue(e.message.contains(expected), e.message, file: file, line: line)
        }
    }

    func files() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }

    // MARK: format

    func testChecksumMatchesReferenceXXH64() {
        func h(_ s: String) -> UInt64 { Array(s.utf8).withUnsafeBytes { Checksum.xxh64($0) } }
        XCTAssertEqual(h(""), 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(h("abc"), 0x44BC_2CF5_AD77_0999)
        XCTAssertEqual(h("Nobody inspects the spammish repetition"), 0xFBCE_A83C_8A37_8BF1)
        XCTAssertEqual(Checksum.hex(0xAB), "00000000000000ab")
    }

    func testRoundTripIsBitExact() throws {
        let path = dir + "/ckpt.h5"
        let original = sample()
        try original.write(to: path)
        XCTAssertEqual(files(), ["ckpt.h5"], "no temporary file is left behind")
        let restored = try TrainingCheckpoint.read(from: path)
        assertSame(original, restored)
        XCTAssertEqual(restored.tensors["scale"]?.shape, [])
        XCTAssertEqual(restored.tensors["empty.inner"]?.shape, [2, 0, 3])
        XCTAssertEqual(restored.tensors["model.norm.weight"]?.name, "model.norm.weight")
        XCTAssertEqual(SeededGenerator(state: Array(restored.rngState.prefix(4))), SeededGenerator(seed: 100))

        // Rewriting the same path replaces the file atomically; an empty checkpoint round-trips too.
        try TrainingCheckpoint(step: 7).write(to: path)
        assertSame(TrainingCheckpoint(step: 7), try TrainingCheckpoint.read(from: path))
        XCTAssertEqual(files(), ["ckpt.h5"])
    }

    func testFailedWriteLeavesNothing() {
        let path = dir + "/missing-subdir/ckpt.h5"
        XCTAssertThrowsError(try sample().write(to: path)) { error in
            XCTAssertTrue((error as? GLMError)?.message.contains("missing-subdir/ckpt.h5") ?? false, "\(error)")
        }
        XCTAssertEqual(files(), [])
        let unnamed = TrainingCheckpoint(tensors: ["": Tensor(scalar: 1)])
        XCTAssertThrowsError(try unnamed.write(to: dir + "/bad.h5"))
        XCTAssertEqual(files(), [], "a rejected checkpoint leaves neither the file nor its temporary")
    }

    // MARK: rejection of torn and corrupt files

    func testTruncatedFileIsRejected() throws {
        let path = dir + "/truncated.h5"
        try sample().write(to: path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        for keep in [data.count / 2, data.count - 1, 100, 0] {
            try data.prefix(keep).write(to: URL(fileURLWithPath: path))
            assertRejected(path, keep == 0 ? "not an HDF5 file" : "truncated")
        }
    }

    func testFlippedBytesInsideADatasetAreRejected() throws {
        let path = dir + "/flipped.h5"
        var checkpoint = sample()
        let pattern = Tensor((0..<64).map { Float(bitPattern: 0x3F12_3400 &+ UInt32($0)) }, shape: [8, 8])
        checkpoint.tensors["marked"] = pattern
        try checkpoint.write(to: path)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        let needle = pattern.scalars.withUnsafeBytes { Data($0) }
        guard let range = data.range(of: needle) else { return XCTFail("tensor bytes not found in the file") }
        data[range.lowerBound + 100] ^= 0x10
        try data.write(to: URL(fileURLWithPath: path))
        assertRejected(path, "'/tensors/marked' fails its checksum")
    }

    func testEveryFlippedByteIsRejectedOrHarmless() throws {
        // Flip bytes across the whole file (data, HDF5 metadata, superblock): the reader must either throw a
        // one-line GLMError naming the file or return exactly what was written (the byte was padding). Never a crash.
        let path = dir + "/fuzz.h5"
        let original = sample()
        try original.write(to: path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var rejected = 0
        for i in stride(from: 0, to: data.count, by: 37) {
            var flipped = data
            flipped[i] ^= 0xFF
            try flipped.write(to: URL(fileURLWithPath: path))
            do {
                assertSame(original, try TrainingCheckpoint.read(from: path))
            } catch let error as GLMError {
                rejected += 1
                XCTAssertTrue(error.message.hasPrefix(path + ":") && !error.message.contains("\n"), error.message)
            }
        }
        XCTAssertGreaterThan(rejected, data.count / 37 / 2)
    }

    func testMissingCompletionMarkerIsRejected() throws {
        let path = dir + "/torn.h5"
        try sample().write(to: path)
        let file = try HDF5File.open(path, writable: true)
        XCTAssertEqual(try file.attribute("complete"), "yes")
        try file.removeAttribute("complete")
        try file.close()
        assertRejected(path, "no completion marker")
    }

    func testMissingDatasetIsRejected() throws {
        let path = dir + "/partial.h5"
        try TrainingCheckpoint(tensors: ["a": Tensor(scalar: 1)], step: 1).write(to: path)
        // A file whose datasets do not match the manifest (here: one more tensor than recorded).
        let file = try HDF5File.open(path, writable: true)
        try file.write(Tensor(scalar: 2), as: "/tensors/b")
        try file.setAttribute("xxh64", Checksum.hex(Checksum.xxh64(Tensor(scalar: 2))), on: "/tensors/b")
        try file.close()
        assertRejected(path, "manifest does not match")
    }

    func testTextFileAndOtherFilesAreRejected() throws {
        let text = dir + "/notes.h5"
        try "step: 5\nthis is not HDF5\n".write(toFile: text, atomically: true, encoding: .utf8)
        assertRejected(text, "not an HDF5 file")
        assertRejected(dir + "/absent.h5", "cannot open")
        assertRejected(dir, "not a regular file")
        // A valid HDF5 file that is not a checkpoint.
        let other = dir + "/other.h5"
        let file = try HDF5File.create(other)
        try file.write(Tensor(scalar: 1), as: "/x")
        try file.close()
        assertRejected(other, "not a GLMTrain training checkpoint")
    }

    // MARK: the checkpoint directory

    func testDirectoryKeepsOnlyTheNewest() throws {
        let checkpoints = CheckpointDirectory(dir + "/run/checkpoints")
        XCTAssertNil(try checkpoints.newestValid().checkpoint, "a missing directory has no checkpoint")
        for step in [100, 200, 300, 400, 500] {
            let saved = try checkpoints.save(sample(step: step), keep: 2)
            XCTAssertEqual(saved.path, checkpoints.path(forStep: step))
            XCTAssertEqual(saved.warnings, [])
        }
        XCTAssertEqual(CheckpointDirectory.fileName(step: 123), "step-00000123.h5")
        XCTAssertEqual(try checkpoints.checkpoints().map(\.step), [400, 500])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: checkpoints.path).sorted(),
                       ["step-00000400.h5", "step-00000500.h5"])
        let scan = try checkpoints.newestValid()
        XCTAssertEqual(scan.file?.step, 500)
        XCTAssertEqual(scan.warnings, [])
        assertSame(sample(step: 500), scan.checkpoint!)
        XCTAssertThrowsError(try checkpoints.save(sample(step: 600), keep: 0))
    }

    func testFallsBackToThePreviousValidCheckpoint() throws {
        let checkpoints = CheckpointDirectory(dir)
        for step in 1...3 { try checkpoints.save(sample(step: step, seed: UInt64(step)), keep: 5) }
        let newest = checkpoints.path(forStep: 3)
        let data = try Data(contentsOf: URL(fileURLWithPath: newest))
        try data.prefix(data.count * 2 / 3).write(to: URL(fileURLWithPath: newest))

        let scan = try checkpoints.newestValid()
        XCTAssertEqual(scan.file?.step, 2)
        assertSame(sample(step: 2, seed: 2), scan.checkpoint!)
        XCTAssertEqual(scan.warnings.count, 1)
        XCTAssertTrue(scan.warnings.first?.contains(newest) ?? false, "\(scan.warnings)")

        // Resuming from step 2 and saving step 3 again replaces the torn file.
        try checkpoints.save(sample(step: 3, seed: 3), keep: 5)
        XCTAssertEqual(try checkpoints.newestValid().file?.step, 3)
        XCTAssertEqual(try checkpoints.newestValid().warnings, [])
    }

    func testSavingAnEarlierStepRemovesAbandonedLaterCheckpoints() throws {
        let checkpoints = CheckpointDirectory(dir)
        for step in [10, 20, 30] { try checkpoints.save(sample(step: step), keep: 1) }
        XCTAssertEqual(try checkpoints.checkpoints().map(\.step), [30])
        let saved = try checkpoints.save(sample(step: 25), keep: 1)
        XCTAssertEqual(saved.removed, [checkpoints.path(forStep: 30)])
        XCTAssertEqual(try checkpoints.checkpoints().map(\.step), [25])
    }

    func testLeftoverTemporaryFilesAreIgnored() throws {
        let checkpoints = CheckpointDirectory(dir)
        try checkpoints.save(sample(step: 5), keep: 3)
        // An interrupted write of a later checkpoint: garbage and a complete-looking HDF5 file under tmp names.
        try "partial".write(toFile: dir + "/step-00000009.h5.tmp-4242", atomically: false, encoding: .utf8)
        try sample(step: 8).write(to: dir + "/scratch.h5")
        try FileManager.default.moveItem(atPath: dir + "/scratch.h5", toPath: dir + "/step-00000008.h5.tmp-77")
        XCTAssertEqual(try checkpoints.checkpoints().map(\.step), [5])
        let scan = try checkpoints.newestValid()
        XCTAssertEqual(scan.file?.step, 5)
        XCTAssertEqual(scan.warnings, [])

        // Saving removes temporary files of writers that are no longer running, and nothing of a live one.
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let dead = dir + "/step-00000007.h5.tmp-\(finished.processIdentifier)"
        let live = dir + "/step-00000007.h5.tmp-\(getppid())"
        for file in [dead, live] { try "x".write(toFile: file, atomically: false, encoding: .utf8) }
        let saved = try checkpoints.save(sample(step: 6), keep: 3)
        XCTAssertTrue(saved.removed.contains(dead), "\(saved.removed)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dead))
        XCTAssertTrue(FileManager.default.fileExists(atPath: live))
        XCTAssertEqual(try checkpoints.checkpoints().map(\.step), [5, 6])
    }
}
