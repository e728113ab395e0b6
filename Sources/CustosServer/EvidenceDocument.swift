import CustosCore
import CustosStore
import Foundation

/// The evidence as a JSON document (`custos.evidence/v1`) and its offline check.
///
/// An auditor checks a document with `custos evidence check FILE --vkey VKEY` on any machine,
/// without the data directory or a running server: the checkpoints' signatures, the
/// consistency proofs between them, each listed event's inclusion proof and that it matches the
/// query and lies in the period, and that the scan covered the whole log of the current
/// checkpoint.
extension EvidenceReport {
    public static let schema = "custos.evidence/v1"

    public func json(generatedBy: String) -> [UInt8] {
        var q: [String: Any] = [:]
        if let s = query.secret { q["secret"] = s }
        if let s = query.identity { q["identity"] = s }
        if !query.kinds.isEmpty { q["kind"] = query.kinds.map(\.rawValue) }
        if !query.outcomes.isEmpty { q["outcome"] = query.outcomes.map(\.rawValue) }
        if !query.environments.isEmpty { q["env"] = query.environments }
        if !query.actions.isEmpty { q["action"] = query.actions }
        if let f = query.from { q["from"] = f.description }
        if let t = query.to { q["to"] = t.description }
        func cp(_ c: SignedCheckpoint) -> [String: Any] { ["size": c.checkpoint.size, "root": c.checkpoint.rootHash.base64, "note": c.note] }
        var checkpoints: [String: Any] = ["after": cp(after), "head": cp(head)]
        if let before { checkpoints["before"] = cp(before) }
        var doc: [String: Any] = [
            "schema": Self.schema,
            "generated_at": generatedAt.description,
            "generated_by": generatedBy,
            "query": q,
            "count": count,
            "events_truncated": truncated,
            "events": matches.map { m -> [String: Any] in
                ["index": m.index, "entry": String(decoding: m.entry, as: UTF8.self),
                 "inclusion_proof": m.inclusionProof.map(\.base64)]
            },
            "scan": ["entries": entriesScanned, "pruned_below": prunedBelow, "events": eventsScanned, "root": scannedRoot.base64,
                     "matches_signed_root": scannedRoot == head.checkpoint.rootHash],
            "checkpoints": checkpoints,
            "consistency": consistency.map { ["from": $0.from, "to": $0.to, "proof": $0.proof.map(\.base64)] as [String: Any] },
            "verifier_key": verifierKey,
            "statement": statement,
        ]
        if let indexCount { doc["index_count"] = indexCount }
        let data = (try? JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])) ?? Data()
        return Array(data) + [0x0A]
    }

    /// One sentence an auditor can quote.
    public var statement: String {
        let origin = head.checkpoint.origin
        let period = "from \(query.from?.description ?? "the beginning") to \(query.to?.description ?? "now")"
        let what = count == 0 ? "no event matches" : count == 1 ? "1 event matches" : "\(count) events match"
        let scope = prunedBelow == 0 ? "Over all \(entriesScanned) entries"
            : "Over entries \(prunedBelow)..<\(entriesScanned) (entries below \(prunedBelow) were archived and pruned after their retention; their hashes are in the signed tree)"
        return "\(scope) of log \(origin) (the signed checkpoint of size \(head.checkpoint.size), root \(head.checkpoint.rootHash.base64)), \(what) the query for the period \(period)."
    }
}

/// The result of checking an evidence document offline.
public struct EvidenceCheck: Sendable {
    public var count: Int
    public var statement: String
    public var lines: [String]

    /// Checks `document` against the log's verifier key (the one the auditor was given, not
    /// the one the document carries). Throws `EvidenceError` at the first thing that fails.
    public static func check(_ document: [UInt8], verifier: NoteVerifier) throws -> EvidenceCheck {
        func fail(_ m: String) -> EvidenceError { EvidenceError("evidence check failed: \(m)") }
        guard document.count <= 256 << 20 else { throw fail("the document is larger than 256 MiB") }
        guard let doc = (try? JSONSerialization.jsonObject(with: Data(document))) as? [String: Any] else {
            throw fail("not a JSON object")
        }
        guard doc["schema"] as? String == EvidenceReport.schema else { throw fail("schema is not \(EvidenceReport.schema)") }
        var lines: [String] = []
        // Query.
        guard let q = doc["query"] as? [String: Any] else { throw fail("query is missing") }
        var query = EventQuery()
        query.secret = q["secret"] as? String
        query.identity = q["identity"] as? String
        query.kinds = try ((q["kind"] as? [String]) ?? []).map { guard let k = IdentityKind(rawValue: $0) else { throw fail("query.kind: unknown \($0)") }; return k }
        query.outcomes = try ((q["outcome"] as? [String]) ?? []).map { guard let o = Outcome(rawValue: $0) else { throw fail("query.outcome: unknown \($0)") }; return o }
        query.environments = (q["env"] as? [String]) ?? []
        query.actions = (q["action"] as? [String]) ?? []
        guard let f = (q["from"] as? String).flatMap(EventTime.init(rfc3339:)), let t = (q["to"] as? String).flatMap(EventTime.init(rfc3339:)), f < t else {
            throw fail("query.from and query.to must be RFC 3339 times, from before to")
        }
        query.from = f; query.to = t

        // Checkpoints.
        guard let cps = doc["checkpoints"] as? [String: Any] else { throw fail("checkpoints are missing") }
        func open(_ name: String) throws -> SignedCheckpoint? {
            guard let c = cps[name] else { return nil }
            guard let o = c as? [String: Any], let note = o["note"] as? String else { throw fail("checkpoints.\(name) has no note") }
            do { return try SignedCheckpoint.open(note, verifier: verifier) } catch {
                throw fail("checkpoints.\(name) is not signed by \(verifier.name): \(error)")
            }
        }
        guard let head = try open("head"), let after = try open("after") else { throw fail("checkpoints.head and checkpoints.after are required") }
        let before = try open("before")
        lines.append("checkpoints signed by \(verifier.name): " + [before, after, head].compactMap { $0 }.map { "size \($0.checkpoint.size)" }.joined(separator: ", "))

        // Consistency: before → after → head, each link proven.
        let proofs = (doc["consistency"] as? [[String: Any]]) ?? []
        func hashes(_ v: Any?, _ what: String) throws -> [MerkleHash] {
            guard let a = v as? [String] else { throw fail("\(what) must be an array of base64 hashes") }
            return try a.map { guard let h = MerkleHash(base64: $0) else { throw fail("\(what): \($0.prefix(60)) is not a base64 SHA-256 hash") }; return h }
        }
        for (a, b) in [(before, after), (after, head)] {
            guard let a else { continue }
            let s1 = a.checkpoint.size, s2 = b.checkpoint.size
            guard s1 <= s2 else { throw fail("checkpoint of size \(s1) comes after one of size \(s2)") }
            if s1 == s2 {
                guard a.checkpoint.rootHash == b.checkpoint.rootHash else { throw fail("two checkpoints of size \(s1) with different roots: a fork") }
                continue
            }
            if s1 == 0 { continue }
            guard let p = proofs.first(where: { ($0["from"] as? Int).map(UInt64.init) == s1 && ($0["to"] as? Int).map(UInt64.init) == s2 }) else {
                throw fail("no consistency proof from size \(s1) to \(s2)")
            }
            do {
                try Merkle.verifyConsistency(size1: s1, size2: s2, root1: a.checkpoint.rootHash, root2: b.checkpoint.rootHash,
                                             proof: try hashes(p["proof"], "consistency proof \(s1)→\(s2)"))
            } catch let e as EvidenceError { throw e } catch {
                throw fail("the consistency proof from size \(s1) to \(s2) does not verify (\(error)): the log was rewritten between them")
            }
            lines.append("consistency proven from size \(s1) to \(s2)")
        }

        // The scan covered the whole log of the head checkpoint.
        guard let scan = doc["scan"] as? [String: Any], let entries = scan["entries"] as? Int,
              let root = (scan["root"] as? String).flatMap({ MerkleHash(base64: $0) }) else { throw fail("scan is missing or malformed") }
        guard UInt64(entries) == head.checkpoint.size, root == head.checkpoint.rootHash else {
            throw fail("the scan covered \(entries) entries with root \(root.base64), not the head checkpoint (size \(head.checkpoint.size))")
        }
        let prunedBelow = (scan["pruned_below"] as? Int) ?? 0
        lines.append(prunedBelow == 0 ? "the query ran over all \(entries) entries of the head checkpoint (root \(root.base64))"
                     : "the query ran over entries \(prunedBelow)..<\(entries) of the head checkpoint (root \(root.base64)); entries below \(prunedBelow) were pruned after archiving")

        // Each event listed: in the log, matching, in the period.
        guard let count = doc["count"] as? Int, count >= 0, let events = doc["events"] as? [[String: Any]] else { throw fail("count or events missing") }
        let truncated = (doc["events_truncated"] as? Bool) ?? false
        guard truncated ? events.count < count : events.count == count else {
            throw fail("count is \(count) but \(events.count) events are listed\(truncated ? "" : " and the list is not marked truncated")")
        }
        var seen = Set<Int>()
        for (k, ev) in events.enumerated() {
            guard let i = ev["index"] as? Int, i >= 0, UInt64(i) < head.checkpoint.size, seen.insert(i).inserted,
                  let text = ev["entry"] as? String else { throw fail("events[\(k)]: index or entry missing, out of range, or repeated") }
            let bytes = Array(text.utf8)
            do {
                try Merkle.verifyInclusion(index: UInt64(i), size: head.checkpoint.size, leafHash: Merkle.leafHash(bytes),
                                           proof: try hashes(ev["inclusion_proof"], "events[\(k)].inclusion_proof"), root: head.checkpoint.rootHash)
            } catch let e as EvidenceError { throw e } catch {
                throw fail("events[\(k)] (entry \(i)) is not in the log: \(error)")
            }
            guard let e = try? AccessEvent.decode(bytes, requireCanonical: true), query.matches(e) else {
                throw fail("events[\(k)] (entry \(i)) does not match the query or the period")
            }
        }
        lines.append("\(events.count) listed event(s) proven in the log and matching the query")
        if let ic = doc["index_count"] as? Int, ic != count {
            throw fail("the index counted \(ic) events but the scan \(count)")
        }
        let statement = (doc["statement"] as? String) ?? ""
        return EvidenceCheck(count: count, statement: statement, lines: lines)
    }
}
