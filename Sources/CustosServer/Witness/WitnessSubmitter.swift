import AsyncHTTPClient
import CustosAlerting
import CustosCore
import CustosTrail
import Foundation
import Logging
import NIOCore
import ServiceLifecycle

/// The log side of c2sp.org/tlog-witness in `custos serve` (config `witnesses:`): at most
/// once per `interval` it reads the newest checkpoint from disk and submits it to each
/// witness that has not cosigned it yet, with a consistency proof (from the trail's tiles)
/// from the size that witness last cosigned. A 409 tells the witness's size; the request is
/// then made again from there. Returned cosignatures are verified with the witness's key and
/// stored (`CosignatureStore`). It never blocks ingest: failures are logged and retried with
/// a growing delay (up to a minute).
public final class WitnessSubmitter: Service, @unchecked Sendable {
    public let witnesses: [ServeConfig.WitnessTarget]
    let layout: TrailLayout
    let verifier: NoteVerifier
    let client: HTTPClient
    let logger: Logger
    let interval: Duration
    /// Per request (AsyncHTTPClient keeps retrying a refused connection until then).
    let timeout: TimeAmount
    /// Witnesses answer concurrently; their cosignatures for one size share a file.
    private let storeLock = NSLock()

    public init(witnesses: [ServeConfig.WitnessTarget], layout: TrailLayout, verifier: NoteVerifier, logger: Logger,
                client: HTTPClient = .shared, interval: Duration = .seconds(1), timeout: TimeAmount = .seconds(15)) {
        self.witnesses = witnesses
        self.layout = layout
        self.verifier = verifier
        self.logger = logger
        self.client = client
        self.interval = interval
        self.timeout = timeout
    }

    /// What the submitter knows about one witness.
    struct Progress: Sendable {
        /// The size the witness last cosigned, as far as this server knows (0: unknown).
        var knownSize: UInt64 = 0
        /// The checkpoint size this server holds a cosignature for.
        var cosignedSize: UInt64?
        var failures = 0
        var notBefore = ContinuousClock.now
    }

    public func run() async throws {
        var progress = witnesses.map { Progress(knownSize: lastCosignedSize(by: $0.verifier) ?? 0) }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if let cp = try? TrailReader(layout: layout, verifier: verifier).checkpoint {
                progress = await round(cp, progress)
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
        }
    }

    /// One submission to every witness that is due and has not cosigned `cp`.
    func round(_ cp: SignedCheckpoint, _ progress: [Progress]) async -> [Progress] {
        await withTaskGroup(of: (Int, Progress).self) { group in
            for (i, w) in witnesses.enumerated() {
                let before = progress[i]
                guard before.cosignedSize != cp.checkpoint.size, ContinuousClock.now >= before.notBefore else { continue }
                group.addTask {
                    var p = before
                    do {
                        p.knownSize = try await self.submit(cp, to: w, old: p.knownSize)
                        p.cosignedSize = cp.checkpoint.size
                        p.failures = 0
                    } catch {
                        p.failures += 1
                        let delay = min(60, 1 << min(p.failures, 6))
                        p.notBefore = ContinuousClock.now + .seconds(delay)
                        self.logger.warning("witness \(w.verifier.name) at \(w.url): \(NetworkErrorClass.describeBriefly(error, timeout: self.timeout)) (retrying in \(delay) s)")
                    }
                    return (i, p)
                }
            }
            var out = progress
            for await (i, p) in group { out[i] = p }
            return out
        }
    }

    struct SubmitError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// Submits `cp` with a proof from `old`; on 409 once more from the witness's size.
    /// Returns the size now cosigned.
    func submit(_ cp: SignedCheckpoint, to w: ServeConfig.WitnessTarget, old: UInt64) async throws -> UInt64 {
        var old = old
        for attempt in 0..<2 {
            let size = cp.checkpoint.size
            guard old <= size else {
                throw SubmitError("the witness has cosigned size \(old) of this log, larger than the trail's \(size): was the trail rolled back?")
            }
            var proof: [MerkleHash] = []
            if old != 0 && old != size { proof = try consistencyProof(from: old, to: size) }
            var body = "old \(old)\n"
            for h in proof { body += h.base64 + "\n" }
            body += "\n" + cp.note
            var req = HTTPClientRequest(url: w.url + "/add-checkpoint")
            req.method = .POST
            req.headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            req.body = .bytes(ByteBuffer(string: body))
            let resp = try await client.execute(req, timeout: timeout)
            var buffer = try await resp.body.collect(upTo: 64 << 10)
            let answer = buffer.readBytes(length: buffer.readableBytes) ?? []
            switch resp.status.code {
            case 200:
                try store(answer, for: cp, from: w)
                return size
            case 409 where attempt == 0:
                let text = String(decoding: answer, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                guard let s = UInt64(text) else { throw SubmitError("409 without a tree size in the body") }
                logger.info("witness \(w.verifier.name) last cosigned size \(s); submitting from there")
                old = s
            default:
                // The witness's own words, made one printable line (they go to the log).
                let text = String(decoding: answer.prefix(200).map { (0x20...0x7E).contains($0) ? $0 : 0x3F }, as: UTF8.self)
                    .trimmingCharacters(in: .whitespaces)
                throw SubmitError("add-checkpoint answered HTTP \(resp.status.code): \(text)")
            }
        }
        throw SubmitError("the witness answered 409 twice")
    }

    /// Checks the witness's answer against the checkpoint and keeps its cosignature(s).
    func store(_ answer: [UInt8], for cp: SignedCheckpoint, from w: ServeConfig.WitnessTarget) throws {
        let combined = Array(cp.note.utf8) + answer
        do { _ = try w.verifier.verify(combined) } catch {
            throw SubmitError("the answer carries no valid cosignature by \(w.verifier.name): \(error)")
        }
        let parsed = try SignedNote.parse(combined)
        for sig in parsed.signatures where sig.name == w.verifier.name && sig.keyID == w.verifier.keyID {
            try storeLock.withLock { try CosignatureStore.add(data: layout.dataDirectory, size: cp.checkpoint.size, signature: sig) }
        }
    }

    /// RFC 9162 consistency proof from `old` to `size`, from the tiles on disk.
    func consistencyProof(from old: UInt64, to size: UInt64) throws -> [MerkleHash] {
        let layout = self.layout
        let reader = TileNodeReader(treeSize: size) { ref in
            let path = layout.tilePath(level: ref.level, index: ref.index, width: ref.width)
            guard let bytes = try DurableFile.read(path, limit: 256 * 32), bytes.count == ref.width * 32 else {
                throw SubmitError("\(path) is missing or has the wrong size (the trail grew meanwhile?)")
            }
            return (0..<ref.width).map { MerkleHash(bytes: bytes[($0 * 32)..<($0 * 32 + 32)])! }
        }
        return try Merkle.consistencyProof(size1: old, size2: size, node: reader.node)
    }

    /// The largest size with a stored cosignature by `verifier`: where to start after a restart.
    func lastCosignedSize(by verifier: CosignatureVerifier) -> UInt64? {
        let dir = CosignatureStore.directory(data: layout.dataDirectory)
        let names = DurableFile.list(dir).filter { $0.count == 20 && $0.allSatisfy(\.isNumber) }.sorted(by: >)
        for name in names.prefix(100) {
            guard let size = UInt64(name) else { continue }
            let mine = CosignatureStore.lines(data: layout.dataDirectory, size: size).contains { line in
                guard let s = try? SignedNote.parseSignatureLine(line) else { return false }
                return s.name == verifier.name && s.keyID == verifier.keyID
            }
            if mine { return size }
        }
        return nil
    }
}
