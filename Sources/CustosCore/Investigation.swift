import Crypto

/// A look at the evidence, recorded as evidence (`custos.investigation/v1`): who ran which
/// query, export or evidence request, when, through which channel, with which parameters and
/// how many results. Auditors review the reviewers: an investigation that left no trail entry
/// did not happen through Custos.
public struct InvestigationRecord: Sendable, Equatable {
    public static let schema = "custos.investigation/v1"

    /// What was asked for. New actions are added at the end; the raw value is in the trail.
    public enum Action: String, Sendable, CaseIterable {
        case query, alerts, evidence, export, blastRadius = "blast_radius", incident
    }

    public var id: String
    public var time: EventTime
    /// Who: the API token's name, or on the command line `--actor` (default `$USER@host`).
    public var actor: String
    /// `cli`, or `api:<role>` for a request with a token of that role.
    public var channel: String
    public var action: Action
    /// The request's parameters as given (filters, period, format), never a token or secret value.
    public var parameters: [String: String]
    /// How many results the request returned (events, alerts), when it returns a count.
    public var resultCount: Int?
    /// The incident this investigation belongs to, when one is named.
    public var incident: String?

    public init(time: EventTime, actor: String, channel: String, action: Action, parameters: [String: String],
                resultCount: Int?, incident: String? = nil) {
        self.time = time; self.actor = actor; self.channel = channel; self.action = action
        self.parameters = parameters; self.resultCount = resultCount; self.incident = incident
        id = Self.makeID(time: time, actor: actor, action: action, parameters: parameters)
    }

    /// `inv-` and 16 hex digits of a hash over what was asked, by whom and when.
    public static func makeID(time: EventTime, actor: String, action: Action, parameters: [String: String]) -> String {
        var text = "custos.investigation/v1\u{0}\(actor)\u{0}\(String(decoding: time.rfc3339Bytes(), as: UTF8.self))\u{0}\(action.rawValue)"
        for k in parameters.keys.sorted() { text += "\u{0}\(k)=\(parameters[k]!)" }
        return "inv-" + String(Hex.encode(Array(SHA256.hash(data: Array(text.utf8)))).prefix(16))
    }

    public func canonicalJSON() -> [UInt8] {
        var w = CanonicalWriter()
        w.beginObject()
        w.field("action", action.rawValue)
        w.field("actor", actor)
        w.field("channel", channel)
        w.field("id", id)
        w.field("incident", incident)
        w.key("parameters")
        w.beginObject()
        for k in parameters.keys.sorted(by: Alert.byteLess) { w.dynamicKey(k); w.string(parameters[k]!) }
        w.endObject()
        w.field("result_count", resultCount)
        w.field("schema", Self.schema)
        w.key("time"); w.time(time)
        w.endObject()
        return w.bytes
    }

    init(tree o: [String: JSONTree]) throws {
        var r = TreeReader(o, "investigation")
        let a = try r.string("action")
        guard let act = Action(rawValue: a) else { throw r.fail("action", "unknown action") }
        action = act
        actor = try r.string("actor")
        channel = try r.string("channel")
        id = try r.string("id")
        incident = try r.optionalString("incident")
        parameters = [:]
        for (k, v) in try r.object("parameters") {
            guard case .string(let s) = v else { throw r.fail("parameters", "values must be strings") }
            parameters[k] = s
        }
        resultCount = try r.optionalInt("result_count")
        _ = try r.string("schema")
        time = try r.time("time")
        try r.end()
    }
}

/// SHA-256 of a byte array, for modules that don't link swift-crypto themselves.
public enum SHA256Bytes {
    public static func of(_ bytes: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: bytes)) }
}
