// adapter_config.json values: the IO layer's one JSON value type, written as Python's json.dumps writes it.

/// A parsed JSON value of an adapter config (integers and floats kept apart).
public typealias AdapterJSON = JSONValue
