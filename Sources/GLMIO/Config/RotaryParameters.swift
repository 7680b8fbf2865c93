// Which object holds the rotary parameters, as transformers 5 picks it (`convert_rope_params_to_dict`:
// `rope_parameters = rope_scaling or rope_parameters`): a non-empty 4.x-style `rope_scaling` replaces
// `rope_parameters` entirely; keys it lacks then come from the top level or the defaults, not from rope_parameters.
import GLMCore
extension ConfigReader {
    /// The rotary parameters' object: `rope_scaling` when it is a non-empty object, else `rope_parameters` (nil: the
    /// top-level keys and defaults). A `rope_scaling` with a rope type other than "default" is refused by that key
    /// (GLMTrain computes only the default rotary embedding).
    func rotaryParameters() throws -> ConfigReader? {
        if let scaling = try object("rope_scaling"), !scaling.object.isEmpty {
            let type = try scaling.string("rope_type") ?? scaling.string("type") ?? "default"
            guard type == "default" else {
                throw GLMError("\(source): key 'rope_scaling': rope_type \"\(type)\" is not supported; expected \"default\" (GLMTrain computes the default rotary embedding only)")
            }
            return scaling
        }
        return try object("rope_parameters")
    }
}
