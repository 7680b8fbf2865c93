// `rope_scaling` beside `rope_parameters`: transformers 5 still reads a 4.x-style rope_scaling when both are present
// (a yarn or linear scaling there changes the rotary frequencies), so it is checked, not ignored.
import GLMCore
extension ConfigReader {
    /// Throws unless a `rope_scaling` object, when `rope_parameters` is also present, has no rope type other than
    /// "default" (GLMTrain computes only the default rotary embedding).
    func checkRopeScalingBesideParameters() throws {
        guard try object("rope_parameters") != nil, let scaling = try object("rope_scaling") else { return }
        let type = try scaling.string("rope_type") ?? scaling.string("type") ?? "default"
        guard type == "default" else {
            throw GLMError("\(source): key 'rope_scaling': rope_type \"\(type)\" is not supported; expected \"default\" (GLMTrain computes the default rotary embedding only)")
        }
    }
}
