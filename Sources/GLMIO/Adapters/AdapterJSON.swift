// adapter_config.json values: the JSON tree of config files, written as Python's json.dumps writes it.
import GLMModel

/// A parsed JSON value of an adapter config (integers and floats kept apart).
public typealias AdapterJSON = ConfigJSON
