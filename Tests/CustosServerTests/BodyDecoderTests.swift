@testable import CustosServer
import CustosCore
import Foundation
import Testing

/// BodyDecoder's fast path for audit-device records (format vault or openbao): it may skip
/// the shape scan only for records the full scan would not take for an envelope.
@Suite struct BodyDecoderTests {
    static let real = vaultPair(id: "fast-1", path: "secret/data/a", name: "alice")

    @Test func recognisesAuditDeviceRecordsOnly() {
        let lines = Self.real.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        for l in lines { #expect(Self.fast(l), "\(l.prefix(60))") }
        for l in [
            #"{"log":"{\"time\":\"2026-01-01T00:00:00Z\",\"type\":\"request\"}"}"#,   // an envelope
            #"{"schema":"custos.event/v1","time":"2026-01-01T00:00:00Z"}"#,
            #"{"time":"2026-01-01T00:00:00Z","schema":"custos.event/v1"}"#,
            #"{"time":"2026\"-01","type":"request"}"#,                                 // escape in the time
            #"{"time":"2026-01-01T00:00:00Z","type""#,                                 // truncated
            #"{"type":"request","time":"2026-01-01T00:00:00Z"}"#,                       // other key order
            "", "{", "   ",
        ] { #expect(!Self.fast(l), "\(l)") }
        #expect(Self.fast("  \t" + lines[0]))
    }

    /// Mutated and truncated real records: whenever the fast path claims one, the full scan
    /// agrees (no schema, no envelope).
    @Test func theFastPathNeverDisagreesWithTheFullScan() {
        var rng = SystemRandomNumberGenerator()
        let base = Array(Self.real.split(separator: "\n")[1].utf8)
        var claimed = 0
        for _ in 0..<5_000 {
            var b = base
            for _ in 0..<Int.random(in: 0...4, using: &rng) {
                let i = Int.random(in: 0..<b.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: b[i] = UInt8.random(in: 0...255, using: &rng)
                case 1: b.remove(at: i)
                default: b.insert(contentsOf: Array(#"","schema":"x","log":"y"#.utf8), at: i)
                }
            }
            if Bool.random(using: &rng) { b = Array(b.prefix(Int.random(in: 0...b.count, using: &rng))) }
            b.withUnsafeBytes { raw in
                if BodyDecoder.isAuditDeviceRecord(raw) {
                    claimed += 1
                    #expect(BodyDecoder.shape(raw).envelope == nil)
                }
            }
        }
        #expect(claimed > 100)
    }

    /// A stamp (an OIDC caller's token claims) that makes an event too large for the trail
    /// rejects that record alone, by its number; the others are stamped and kept. Before, the
    /// oversized event failed the whole commit it joined, other callers' events included.
    @Test func aStampThatMakesAnEventTooLargeRejectsThatRecordOnly() throws {
        var near = ev(2)
        near.identity.name = String(repeating: "n", count: AccessEvent.maxEncodedSize - ev(2).canonicalJSON().count - 100)
        let nearSize = near.canonicalJSON().count
        try #require(nearSize <= AccessEvent.maxEncodedSize && nearSize > AccessEvent.maxEncodedSize - 1_000)
        let body = Array((String(decoding: ev(1).canonicalJSON(), as: UTF8.self) + "\n"
            + String(decoding: near.canonicalJSON(), as: UTF8.self) + "\n"
            + String(decoding: ev(3).canonicalJSON(), as: UTF8.self) + "\n").utf8)
        let repo = String(repeating: "r", count: 2_000)
        for format in [WireFormat.custos, .auto] {
            let r = BodyDecoder(format: format, instance: "i", maxRecordBytes: 1 << 20, batched: true,
                                stamp: { $0.pipeline = .init(provider: "github", repository: repo) }).decode(body)
            #expect(r.batch.count == 0, "a stamped body is never batched as it is")
            #expect(r.events.map(\.id) == [ev(1).id, ev(3).id])
            #expect(r.events.allSatisfy { $0.pipeline?.repository == repo })
            #expect(r.rejected == 1 && r.rejections.map(\.line) == [2], "\(r.rejections)")
            #expect(r.rejections.first?.reason.contains("with the token's pipeline context") == true)
            // Without the stamp the same body is all accepted.
            #expect(BodyDecoder(format: format, instance: "i", maxRecordBytes: 1 << 20).decode(body).events.count == 3)
        }
    }

    /// The decoded result of a body is the same with the fast path as the full scan gives:
    /// the body decodes to the pair's one event.
    @Test func aBodyOfDeviceRecordsDecodes() {
        let body = Array((Self.real + Self.real.replacingOccurrences(of: "fast-1", with: "fast-2")).utf8)
        let r = BodyDecoder(format: .openbao, instance: "i", maxRecordBytes: 1 << 20).decode(body)
        #expect(r.events.map(\.requestID) == ["fast-1", "fast-2"])
        #expect(r.rejected == 0)
    }

    /// The ingest endpoint's batched path gives byte for byte the entries the event path
    /// encodes, with the same counts and rejections: over a real OpenBao audit log, as NDJSON,
    /// as a JSON array and as Fluent Bit envelopes, with damaged lines in between.
    @Test(arguments: [WireFormat.openbao, .vault])
    func theBatchedPathEncodesWhatTheEventPathDoes(format: WireFormat) throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("CustosCoreTests/Fixtures/openbao/audit-2.7.2.log").path
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.count > 50)
        var mixed: [String] = []
        for (i, l) in lines.enumerated() {
            switch i % 7 {
            case 3: mixed.append(String(l.prefix(l.count / 2)))   // truncated
            case 5:
                let escaped = l.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                mixed.append("{\"log\":\"\(escaped)\"}")
            default: mixed.append(l)
            }
        }
        let bodies = [lines.joined(separator: "\n"), mixed.joined(separator: "\n") + "\n{oops\n", "[" + lines.joined(separator: ",") + "]"]
        for body in bodies {
            let bytes = Array(body.utf8)
            let plain = BodyDecoder(format: format, instance: "i", maxRecordBytes: 1 << 20).decode(bytes)
            let fast = BodyDecoder(format: format, instance: "i", maxRecordBytes: 1 << 20, batched: true).decode(bytes)
            #expect(fast.events.isEmpty)
            #expect(plain.batch.isEmpty)
            #expect(fast.eventCount == plain.eventCount)
            #expect(plain.eventCount > 10)
            let encoded = GroupCommitter.encode(plain.events)
            let sameEntries = fast.batch.count == encoded.count && (0..<encoded.count).allSatisfy { fast.batch.entry($0) == encoded.entry($0) }
            #expect(sameEntries, "an entry differs between the batched and the event path")
            let sameColumns = fast.batch.count == encoded.count && (0..<encoded.count).allSatisfy { i in
                [\EventBatch.Row.action, \.outcome, \.sourceKind, \.sourceInstance, \.secretPath, \.environment, \.identityID, \.identityName,
                 \.identityKind, \.originIP].allSatisfy { fast.batch.string(i, $0) == encoded.string(i, $0) }
            }
            #expect(sameColumns, "an index column differs between the batched and the event path")
            #expect((0..<fast.batch.count).map { fast.batch.id($0) } == plain.events.map(\.id))
            #expect((0..<fast.batch.count).allSatisfy { fast.batch.rows[$0].keyHi == encoded.rows[$0].keyHi && fast.batch.rows[$0].timeNanos == encoded.rows[$0].timeNanos })
            #expect(fast.rejected == plain.rejected && fast.ignored == plain.ignored && fast.records == plain.records)
            #expect(fast.rejections.map(\.reason) == plain.rejections.map(\.reason))
            #expect(fast.waitingRequests == plain.waitingRequests)
        }
        // Other formats are never batched.
        #expect(BodyDecoder(format: .auto, instance: "i", maxRecordBytes: 1 << 20, batched: true).decode(Array(lines.joined(separator: "\n").utf8)).batch.isEmpty)
    }

    /// Custos events: a canonical line goes into the batch as it is, any other custos record
    /// (members in another order, whitespace, an `index` member, inside a shipper's envelope)
    /// is decoded and encoded; either way the batch is what the event path gives, in record
    /// order, with the same rejections.
    @Test func theBatchedCustosPathKeepsWhatTheEventPathDoes() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("CustosCoreTests/Fixtures/openbao/audit-2.7.2.log").path
        let log = try String(contentsOfFile: path, encoding: .utf8)
        let events = BodyDecoder(format: .openbao, instance: "i", maxRecordBytes: 1 << 20).decode(Array(log.utf8)).events
        #expect(events.count > 10)
        var lines: [String] = []
        for (i, e) in events.enumerated() {
            let canonical = String(decoding: e.canonicalJSON(), as: UTF8.self)
            switch i % 6 {
            case 1: lines.append(String(decoding: e.canonicalJSON(index: UInt64(i)), as: UTF8.self))   // an index member
            case 2: lines.append(canonical.replacingOccurrences(of: "\",\"", with: "\", \""))                // whitespace
            case 3:
                let escaped = canonical.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                lines.append("{\"log\":\"\(escaped)\"}")                                                 // an envelope
            case 4: lines.append(String(canonical.prefix(canonical.count / 2)))                           // truncated
            default: lines.append(canonical)
            }
        }
        let bodies = [lines.joined(separator: "\n") + "\n{oops\n", "[" + lines.filter { $0.hasSuffix("}") }.joined(separator: ",") + "]"]
        for body in bodies {
            let bytes = Array(body.utf8)
            let plain = BodyDecoder(format: .custos, instance: "i", maxRecordBytes: 1 << 20).decode(bytes)
            let fast = BodyDecoder(format: .custos, instance: "i", maxRecordBytes: 1 << 20, batched: true).decode(bytes)
            #expect(fast.events.isEmpty && plain.batch.isEmpty)
            #expect(plain.eventCount > 10 && fast.eventCount == plain.eventCount)
            let encoded = GroupCommitter.encode(plain.events)
            #expect(fast.batch.count == encoded.count && (0..<encoded.count).allSatisfy { fast.batch.entry($0) == encoded.entry($0) },
                    "an entry differs between the batched and the event path")
            #expect(fast.batch.count == encoded.count && (0..<encoded.count).allSatisfy { i in
                [\EventBatch.Row.id, \.action, \.outcome, \.sourceKind, \.sourceInstance, \.secretPath, \.environment, \.identityID,
                 \.identityName, \.identityKind, \.originIP].allSatisfy { fast.batch.string(i, $0) == encoded.string(i, $0) }
                    && fast.batch.rows[i].keyHi == encoded.rows[i].keyHi && fast.batch.rows[i].keyLo == encoded.rows[i].keyLo
                    && fast.batch.rows[i].timeNanos == encoded.rows[i].timeNanos
            }, "an index column, key or time differs between the batched and the event path")
            #expect(fast.rejected == plain.rejected && fast.records == plain.records)
            #expect(fast.rejections.map(\.reason) == plain.rejections.map(\.reason))
            // Both ways were taken: a line taken as it is has its columns inside its entry,
            // an encoded one has their values copied after it.
            let inside = fast.batch.rows.filter { Int($0.id.offset) < $0.length }.count
            #expect(inside > 0 && inside < fast.batch.count, "\(inside) of \(fast.batch.count) taken as they are")
        }
        #expect(BodyDecoder(format: .custos, instance: "i", maxRecordBytes: 1 << 20).decode(Array(lines.joined(separator: "\n").utf8)).rejected > 0)
    }

    static func fast(_ s: String) -> Bool {
        Array(s.utf8).withUnsafeBytes { BodyDecoder.isAuditDeviceRecord($0) }
    }
}
