// libFuzzer target: a training recipe (YAML) parsed with RecipeReader.document and decoded with Recipe(node:file:),
// then written back as YAML; nothing runs.
import Foundation
import FuzzSupport
import GLMTraining

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let path = Fuzz.file(data, size, name: "recipe.yaml")
    Fuzz.expectGLMError("recipe") {
        let recipe = try Recipe.load(path: path)
        _ = try recipe.resolvedYAML()
    }
    return 0
}

/// The process entry point SwiftPM links this executable with: libFuzzer's driver.
@_cdecl("fuzz_recipe_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv)
}
