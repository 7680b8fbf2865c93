// What `output_dir` must be before a run writes anything: new, empty, or a GLMTrain run directory (it has the
// recipe.yaml every run writes first), with nothing in the way of the names a run writes. Checked before step 1,
// so that a run never trains for an hour to fail at its export, nor writes its files among someone else's.
import Foundation
import GLMCore

public enum RunDirectoryCheck {
    /// The names a run writes in its directory, and whether each is a directory.
    static let entries: [(name: String, isDirectory: Bool)] = [
        ("recipe.yaml", false), ("metrics.jsonl", false), ("checkpoints", true), ("adapter", true), ("model", true),
        ("best", true), ("plots", true), ("reference", true),
    ]

    /// Throws when `directory` exists but is not a directory, holds other files and no run (unless `overwrite`), or
    /// has a file where the run writes a directory (or the reverse).
    static func check(_ directory: String, overwrite: Bool) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDir) else { return }
        guard isDir.boolValue else { throw GLMError("\(directory): output_dir is a file, not a directory") }
        let names = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }
        if !names.isEmpty, !names.contains("recipe.yaml"), !overwrite {
            let shown = names.sorted().prefix(3).joined(separator: ", ") + (names.count > 3 ? ", …" : "")
            throw GLMError("\(directory): output_dir holds other files (\(shown)) and no GLMTrain run (no recipe.yaml); give a new or empty directory, or pass --overwrite to write the run among them")
        }
        for (name, wantDirectory) in entries {
            var d: ObjCBool = false
            let path = (directory as NSString).appendingPathComponent(name)
            guard fm.fileExists(atPath: path, isDirectory: &d), d.boolValue != wantDirectory else { continue }
            throw GLMError("\(path): is a \(d.boolValue ? "directory" : "file") where the run writes its \(name) \(wantDirectory ? "directory" : "file"); move it away or set output_dir")
        }
    }

    /// Whether `directory` does not exist or holds nothing (hidden files aside).
    static func isNewOrEmpty(_ directory: String) -> Bool {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDir) else { return true }
        guard isDir.boolValue, let names = try? fm.contentsOfDirectory(atPath: directory) else { return false }
        return names.allSatisfy { $0.hasPrefix(".") }
    }

    /// After a run that was new failed before step 1: removes its recipe.yaml, and the directory when the run made
    /// it and nothing else is in it. Anything else the run wrote (a DPO reference's log-probabilities) stays, with
    /// the recipe.yaml that makes the directory a run.
    static func removeUnstartedRun(_ directory: String, madeDirectory: Bool) {
        let fm = FileManager.default
        let names = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }
        guard names == ["recipe.yaml"] else { return }
        try? fm.removeItem(atPath: (directory as NSString).appendingPathComponent("recipe.yaml"))
        if madeDirectory, ((try? fm.contentsOfDirectory(atPath: directory)) ?? ["?"]).isEmpty { try? fm.removeItem(atPath: directory) }
    }

    /// Before a resume writes its recipe.yaml over the run's: a run directory with checkpoints whose recipe.yaml is
    /// another task's (a dpo run's, resumed by a grpo recipe) is refused, leaving that file as it is. An unreadable
    /// old recipe is left to the checkpoint's own check.
    public static func checkResumedTask(_ directory: String, recipe: Recipe) throws {
        // Only a run with a checkpoint to resume: without one, a resume starts afresh (and writes its recipe.yaml).
        let checkpoints = (directory as NSString).appendingPathComponent("checkpoints")
        guard ((try? FileManager.default.contentsOfDirectory(atPath: checkpoints)) ?? []).contains(where: { $0.hasSuffix(".h5") }) else { return }
        let path = (directory as NSString).appendingPathComponent("recipe.yaml")
        guard let data = try? FileInput.read(path, limit: FileLimits.maxConfigBytes), let text = String(data: data, encoding: .utf8),
              let node = try? RecipeReader.document(text, file: path), let old = try? Recipe(node: node, file: path),
              old.task != recipe.task else { return }
        throw GLMError("\(path): this run directory holds a \(old.task.rawValue) run; \(recipe.file) is a \(recipe.task.rawValue) recipe, which cannot resume its checkpoints (set output_dir to a new directory)")
    }
}
