/// The decoder framework for sources other than Vault/OpenBao (README "Other sources").
///
/// A source decoder sees one parsed JSON record at a time and turns it into zero or more
/// outputs: events (a GitHub job that received three secrets is three events), `ignored`
/// with a reason (a valid record that is no secret access), or `rejected` with a reason that
/// never quotes the input. It keeps no state between records, so records can come from a
/// file, an HTTP body or a queue, in any order. `SourceStreamDecoder` puts the pieces
/// together: bytes → records (`JSONRecordSplitter`) → `JSONNode` → the source's decoder.
///
/// Adding a source (issue 7: CloudTrail, GCP, Azure, Kubernetes, Infisical, 1Password,
/// Doppler): a type conforming to `SourceRecordDecoder`, a case in `SourceFormat`, fixtures.
/// Shared helpers: `SourceTime` (every timestamp style), `PrincipalClass` (identity kinds),
/// `SourceEventBuilder` (ids, size check), `SourceIP` (addresses).
public protocol SourceRecordDecoder: Sendable {
    /// The source kind its events carry (`source.kind`).
    var sourceKind: String { get }
    /// The configured instance (`source.instance`), part of every event id.
    var instance: String { get }
    /// Whether `record` looks like one of this source's records (for `format=auto`, and to
    /// tell a log shipper's envelope from the record itself). Cheap: a few member look-ups.
    static func recognizes(_ record: JSONNode) -> Bool
    /// Decodes one record (a JSON object) that starts on `line`.
    func decode(_ record: JSONNode, line: Int, into out: inout [DecodeOutput])
}

/// The records a page or batch wrapper holds — a CloudTrail log file's `Records`, a Kubernetes
/// `EventList`'s `items`, a 1Password or Infisical page, an Azure `records` batch — decoded the
/// same way for every source: an empty list is one ignored line (`empty` says why), an element
/// that is not a JSON object is rejected, and every object goes to `decodeOne` with the
/// wrapper's line.
public enum RecordWrapper {
    public static func decode(_ list: [JSONNode], key: String, line: Int, empty: String, into out: inout [DecodeOutput],
                              _ decodeOne: (JSONNode, inout [DecodeOutput]) -> Void) {
        if list.isEmpty { out.append(.ignored(line: line, reason: empty)) }
        for element in list {
            guard element.isObject else {
                out.append(.rejected(.init(line: line, reason: "an element of \"\(key)\" is not a JSON object")))
                continue
            }
            decodeOne(element, &out)
        }
    }
}

/// How an identity of a source maps to Custos's `IdentityKind`, shared by every source
/// decoder so that policies mean the same across sources. A decoder classifies the actor
/// of a record (`PrincipalClass`), the mapping gives the kind:
///
/// | class | kind | examples |
/// |---|---|---|
/// | person | human | a GitHub user in the web UI, a GitLab user, an IAM user, a UPN |
/// | accessToken | api_key | a personal/project access token acting for someone |
/// | bot | service | `dependabot[bot]`, GitLab `project_123_bot_…` |
/// | application | service | a GitHub App server-to-server token, an Azure app id |
/// | serviceAccount | service | a GCP `…gserviceaccount.com`, `system:serviceaccount:` |
/// | ciJob | pipeline | a workflow job, a CI pipeline run |
/// | superuser | root | AWS root, Vault root |
/// | anonymous | unknown | no authenticated actor |
public enum PrincipalClass: String, Sendable, CaseIterable {
    case person, accessToken, bot, application, serviceAccount, ciJob, superuser, anonymous

    public var kind: IdentityKind {
        switch self {
        case .person: .human
        case .accessToken: .api_key
        case .bot, .application, .serviceAccount: .service
        case .ciJob: .pipeline
        case .superuser: .root
        case .anonymous: .unknown
        }
    }

    /// Names that bots have across sources: GitHub's `name[bot]`, GitLab's
    /// `project_<id>_bot…` / `group_<id>_bot…` (project and group access tokens), a
    /// `ghost`-style service user is not guessed.
    public static func isBotName(_ name: String) -> Bool {
        if name.hasSuffix("[bot]") { return true }
        for prefix in ["project_", "group_"] where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            if !digits.isEmpty, rest.dropFirst(digits.count).hasPrefix("_bot") { return true }
        }
        return false
    }
}

/// Helpers every source decoder uses to make its events the same way.
public struct SourceEventBuilder: Sendable {
    public let kind: String
    public let instance: String
    let idPrefix: [UInt8]

    public init(kind: String, instance: String) {
        self.kind = kind; self.instance = instance
        self.idPrefix = EventID.prefix(instance: instance)
    }

    public var source: AccessEvent.Source { .init(kind: kind, instance: instance) }

    /// A deterministic id from the source's own record id and the parts that tell apart the
    /// events of one record (a secret name): the same record ingested again gets the same
    /// ids, so it is counted as a duplicate. The source kind is part of the key, so two
    /// sources' ids never collide.
    public func id(_ parts: [String]) -> String {
        var key = kind
        for p in parts { key += "\u{0}" + p }
        return key.withUTF8 { EventID.make(prefix: idPrefix, key: UnsafeRawBufferPointer($0)) }
    }

    /// Emits `event`, or rejects the record when it would not fit the trail.
    public func emit(_ event: AccessEvent, line: Int, into out: inout [DecodeOutput]) {
        guard event.fitsTrailEntry else {
            out.append(.rejected(.init(line: line, reason: VaultAuditDecoder.tooLarge)))
            return
        }
        out.append(.event(event, line: line))
    }
}

/// Character classes of the names sources use (secret names, slugs, variable keys).
public enum SourceText {
    /// `[A-Za-z0-9_]`
    @inline(__always) public static func isWord(_ c: UInt8) -> Bool {
        if c >= 0x30 && c <= 0x39 { return true }
        if c == 0x5F { return true }
        let l = c | 0x20
        return l >= 0x61 && l <= 0x7A
    }

    /// `[A-Za-z0-9_.-]`
    @inline(__always) public static func isSlug(_ c: UInt8) -> Bool {
        isWord(c) || c == 0x2E || c == 0x2D
    }
}

/// IP addresses as sources give them (`1.2.3.4`, `1.2.3.4:5678`, `[v6]:port`, bare IPv6).
public enum SourceIP {
    /// The origin for an address string, or nil when it is not an address (a host name, a
    /// service name such as `secretsmanager.amazonaws.com`, junk).
    public static func origin(_ v: JSONNode?) -> AccessEvent.Origin? {
        guard let s = v?.stringValue, !s.isEmpty, s.utf8.count <= 80 else { return nil }
        return VaultAuditDecoder.origin(s, port: nil)
    }
}

/// Source formats on the decoder framework (`custos ingest --format`, `?format=`).
public enum SourceFormat: String, Sendable, CaseIterable {
    /// GitHub organization/enterprise audit log (REST API pages, streaming, JSON export).
    case github
    /// GitLab audit events (`audit_json.log`, streaming destinations, REST API).
    case gitlab
    /// AWS CloudTrail (Secrets Manager, SSM Parameter Store): records or `{"Records": [...]}` log files.
    case cloudtrail
    /// Google Cloud audit logs (Secret Manager): Cloud Logging entries with an AuditLog payload.
    case gcp
    /// Azure Key Vault resource logs (`AuditEvent`; single records or `{"records": [...]}`).
    case azure
    /// Kubernetes API server audit events (`audit.k8s.io/v1` Event or EventList).
    case kubernetes
    /// Infisical audit logs (API rows or pages, audit log streams).
    case infisical
    /// 1Password Events API: item usages and sign-in attempts (records or response pages).
    case onepassword
    /// Doppler activity log stream documents (secret reads, secret changes).
    case doppler

    public func decoder(instance: String) -> any SourceRecordDecoder {
        switch self {
        case .github: return GitHubAuditDecoder(instance: instance)
        case .gitlab: return GitLabAuditDecoder(instance: instance)
        case .cloudtrail: return CloudTrailDecoder(instance: instance)
        case .gcp: return GCPAuditDecoder(instance: instance)
        case .azure: return AzureKeyVaultDecoder(instance: instance)
        case .kubernetes: return KubernetesAuditDecoder(instance: instance)
        case .infisical: return InfisicalAuditDecoder(instance: instance)
        case .onepassword: return OnePasswordEventsDecoder(instance: instance)
        case .doppler: return DopplerActivityDecoder(instance: instance)
        }
    }

    public func recognizes(_ record: JSONNode) -> Bool {
        switch self {
        case .github: GitHubAuditDecoder.recognizes(record)
        case .gitlab: GitLabAuditDecoder.recognizes(record)
        case .cloudtrail: CloudTrailDecoder.recognizes(record)
        case .gcp: GCPAuditDecoder.recognizes(record)
        case .azure: AzureKeyVaultDecoder.recognizes(record)
        case .kubernetes: KubernetesAuditDecoder.recognizes(record)
        case .infisical: InfisicalAuditDecoder.recognizes(record)
        case .onepassword: OnePasswordEventsDecoder.recognizes(record)
        case .doppler: DopplerActivityDecoder.recognizes(record)
        }
    }

    /// The format whose decoder recognizes `record`, if one does (`format=auto`).
    public static func detect(_ record: JSONNode) -> SourceFormat? {
        allCases.first { $0.recognizes(record) }
    }
}

/// Bytes in, outputs out, for one source: splits the stream into records, parses each one
/// (bounded), unwraps a log shipper's envelope (`{"log": "<the record as a string>"}` from
/// Fluent Bit, `message` from Vector) and hands the record to the source's decoder.
public struct SourceStreamDecoder: Sendable {
    public let decoder: any SourceRecordDecoder
    public var splitter: JSONRecordSplitter
    public let limits: JSONNode.Limits

    public init(decoder: any SourceRecordDecoder, maxRecordBytes: Int = 1 << 20, limits: JSONNode.Limits = .default) {
        self.decoder = decoder
        self.splitter = JSONRecordSplitter(maxRecordBytes: maxRecordBytes, maxDepth: limits.maxDepth)
        self.limits = limits
    }

    public init(format: SourceFormat, instance: String, maxRecordBytes: Int = 1 << 20) {
        self.init(decoder: format.decoder(instance: instance), maxRecordBytes: maxRecordBytes)
    }

    /// Lines seen so far.
    public var lines: Int { splitter.line }

    public mutating func feed(_ chunk: UnsafeRawBufferPointer, into out: inout [DecodeOutput]) {
        let d = decoder, limits = self.limits
        splitter.feed(chunk) { item in Self.handle(item, decoder: d, limits: limits, into: &out) }
    }

    public mutating func feed(_ chunk: [UInt8], into out: inout [DecodeOutput]) {
        chunk.withUnsafeBytes { feed($0, into: &out) }
    }

    public mutating func finish(into out: inout [DecodeOutput]) {
        let d = decoder, limits = self.limits
        splitter.finish { item in Self.handle(item, decoder: d, limits: limits, into: &out) }
    }

    /// Decodes a whole input at once.
    public static func decodeAll(_ bytes: [UInt8], decoder: any SourceRecordDecoder) -> [DecodeOutput] {
        var s = SourceStreamDecoder(decoder: decoder)
        var out: [DecodeOutput] = []
        s.feed(bytes, into: &out)
        s.finish(into: &out)
        return out
    }

    static func handle(_ item: JSONRecordSplitter.Item, decoder: any SourceRecordDecoder, limits: JSONNode.Limits,
                       into out: inout [DecodeOutput]) {
        switch item {
        case .rejected(let r, _, _): out.append(.rejected(r))
        case .record(let bytes, let line, _, _): decodeRecord(bytes, line: line, decoder: decoder, limits: limits, into: &out)
        }
    }

    /// One record's bytes: parsed, unwrapped, decoded.
    public static func decodeRecord(_ bytes: UnsafeRawBufferPointer, line: Int, decoder: any SourceRecordDecoder,
                                    limits: JSONNode.Limits = .default, into out: inout [DecodeOutput]) {
        let value: JSONNode
        do throws(JSONNode.ParseError) {
            value = try JSONNode.parse(bytes, limits: limits)
        } catch {
            out.append(.rejected(.init(line: line, reason: "invalid JSON: \(error.description)")))
            return
        }
        decodeValue(value, line: line, decoder: decoder, limits: limits, into: &out)
    }

    public static func decodeValue(_ value: JSONNode, line: Int, decoder: any SourceRecordDecoder,
                                   limits: JSONNode.Limits = .default, into out: inout [DecodeOutput]) {
        guard value.isObject else {
            out.append(.rejected(.init(line: line, reason: "record is not a JSON object")))
            return
        }
        if !type(of: decoder).recognizes(value), let inner = envelope(value, limits: limits) {
            decoder.decode(inner, line: line, into: &out)
            return
        }
        decoder.decode(value, line: line, into: &out)
    }

    /// The record inside a shipper's envelope: a `log` or `message` string holding a JSON
    /// object (parsed with the same limits).
    public static func envelope(_ value: JSONNode, limits: JSONNode.Limits = .default) -> JSONNode? {
        for key in ["log", "message"] {
            guard let s = value[key]?.stringValue, s.utf8.first == UInt8(ascii: "{") || s.hasPrefix(" ") else { continue }
            if let inner = try? JSONNode.parse(Array(s.utf8), limits: limits), inner.isObject { return inner }
        }
        return nil
    }
}
