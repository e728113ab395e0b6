import AsyncHTTPClient
@testable import CustosArchive
import CustosCore
import CustosTrail
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

final class TempDir: @unchecked Sendable {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "custos-archive-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit {
        // Archived files may carry the immutable flag where the test runs with CAP_LINUX_IMMUTABLE.
        if let e = FileManager.default.enumerator(atPath: path) {
            for case let rel as String in e { LocalArchiveStore.setImmutable(path + "/" + rel, false) }
        }
        _ = try? FileManager.default.removeItem(atPath: path)
    }
}

let day: Int64 = 86_400
let t0: Int64 = 1_700_000_000

func event(_ i: Int, time: Int64, secret: Bool = true, action: Action = .read) -> AccessEvent {
    AccessEvent(
        id: EventID.make(instance: "t", key: "req-\(i)"),
        time: EventTime(seconds: time, nanos: 0, digits: 0),
        source: .init(kind: "openbao", instance: "t"), action: action,
        outcome: .success, reason: nil,
        secret: secret ? .init(store: "secret/", path: "secret/data/app\(i % 10)/db") : nil,
        identity: .init(id: "entity-\(i % 5)", name: "svc-\(i % 5)", kind: .service, method: "approle", policies: ["default"]),
        origin: .init(ip: "10.0.0.\(i % 250)", port: 40000), requestID: "req-\(i)")
}

@Suite struct RetentionClassTests {
    func classify(_ e: AccessEvent) -> (RetentionClass, EventTime?) {
        e.canonicalJSON().withUnsafeBytes { RetentionClass.classify($0) }
    }

    @Test func classes() {
        #expect(classify(event(1, time: t0)).0 == .secretAccess)
        #expect(classify(event(1, time: t0, secret: false, action: .login)).0 == .authentication)
        #expect(classify(event(1, time: t0, secret: false, action: .tokenCreate)).0 == .authentication)
        #expect(classify(event(1, time: t0, secret: false, action: .policyChange)).0 == .authentication)
        #expect(classify(event(1, time: t0, secret: false, action: .admin)).0 == .system)
        #expect(classify(event(1, time: t0, secret: false, action: .read)).0 == .application)
        #expect(classify(event(1, time: t0)).1 == EventTime(seconds: t0, nanos: 0, digits: 0))
        // Custos's own records and unknown schemas: kept as long as the longest tier.
        let other = Array(#"{"created_at":"2024-01-01T00:00:00Z","expires_at":"2024-02-01T00:00:00Z","schema":"custos.incident/v1"}"#.utf8)
        let (c, t) = other.withUnsafeBytes { RetentionClass.classify($0) }
        #expect(c == .custosRecord)
        #expect(t == EventTime(rfc3339: "2024-02-01T00:00:00Z"))
        let p = RetentionPolicy()
        #expect(p.period(.custosRecord) >= p.period(.secretAccess))
        // No readable time: never expires.
        let untimed = Array(#"{"schema":"custos.other/v1"}"#.utf8)
        let (c2, t2) = untimed.withUnsafeBytes { RetentionClass.classify($0) }
        #expect(c2 == .custosRecord && t2 == nil)
        #expect(!p.isExpired(.custosRecord, time: nil, now: EventTime(seconds: .max / 2)))
    }

    @Test func defaultsAndExpiry() {
        let p = RetentionPolicy()
        #expect(p.secretAccess >= 365 * day && p.authentication >= 365 * day)
        #expect((183 * day...365 * day).contains(p.application))
        #expect((92 * day...183 * day).contains(p.system))
        let t = EventTime(seconds: t0)
        #expect(!p.isExpired(.system, time: t, now: EventTime(seconds: t0 + 135 * day)))
        #expect(p.isExpired(.system, time: t, now: EventTime(seconds: t0 + 135 * day + 1)))
        #expect(!p.isExpired(.secretAccess, time: t, now: EventTime(seconds: t0 + 300 * day)))
    }

    @Test func parsesAndRefusesShortTiers() throws {
        let p = try RetentionPolicy.parse(yaml: "retention:\n  secret_access: 400d\n  system: 100d\n  archive_lock: 3650d\n")
        #expect(p.secretAccess == 400 * day && p.system == 100 * day && p.archiveLock == 3650 * day)
        #expect(p.application == 270 * day)
        let bare = try RetentionPolicy.parse(yaml: "authentication: 60w\n")
        #expect(bare.authentication == 420 * day)
        do {
            _ = try RetentionPolicy.parse(yaml: "retention:\n  secret_access: 30d\n  application: 90d\n  colour: red\n")
            Issue.record("accepted tiers below the minimums")
        } catch {
            let text = "\(error)"
            #expect(text.contains("retention.secret_access") && text.contains("at least 365d"))
            #expect(text.contains("retention.application") && text.contains("at least 183d"))
            #expect(text.contains("unknown key"))
        }
    }

    @Test func prunePointMath() {
        // Whole bundles only, never past the archive, the trail's full bundles or below the current minimum.
        #expect(PrunePoint.compute(firstUnexpired: 700, verifiedEnd: 1024, size: 2000, minimumIndex: 0) == 512)
        #expect(PrunePoint.compute(firstUnexpired: 2000, verifiedEnd: 768, size: 2000, minimumIndex: 0) == 768)
        #expect(PrunePoint.compute(firstUnexpired: 2000, verifiedEnd: 2000, size: 2000, minimumIndex: 0) == 1792)
        #expect(PrunePoint.compute(firstUnexpired: 255, verifiedEnd: 2000, size: 2000, minimumIndex: 0) == 0)
        #expect(PrunePoint.compute(firstUnexpired: 300, verifiedEnd: 0, size: 2000, minimumIndex: 256) == 256)
    }
}

@Suite struct SigV4Tests {
    /// "get-vanilla" from the AWS SigV4 test suite.
    @Test func getVanilla() {
        let s = SigV4(accessKey: "AKIDEXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region: "us-east-1", service: "service")
        let signed = s.sign(method: "GET", path: "/", query: [], headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
                            payloadHash: SigV4.sha256Hex([UInt8]()), amzDate: "20150830T123600Z")
        #expect(signed.signature == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        #expect(signed.authorization == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    /// The GET Object example of the S3 SigV4 documentation ("sig-v4-header-based-auth").
    @Test func s3DocumentationExample() {
        let s = SigV4(accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1")
        let empty = SigV4.sha256Hex([UInt8]())
        let signed = s.sign(method: "GET", path: "/test.txt", query: [], headers: [
            ("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", empty), ("x-amz-date", "20130524T000000Z"),
        ], payloadHash: empty, amzDate: "20130524T000000Z")
        #expect(signed.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }
}

/// A trail of 1,000 entries: 0..<600 a year and a half old, the rest recent.
struct TrailFixture {
    let dir = TempDir()
    let archiveDir = TempDir()
    var layout: TrailLayout { TrailLayout(dataDirectory: dir.path) }
    let signer: NoteSigner
    let now = EventTime(seconds: t0 + 600 * day)
    init(total: Int = 1000, old: Int = 600) throws {
        signer = try TrailKeys.generate(layout: TrailLayout(dataDirectory: dir.path), origin: "test.example/trail")
        let w = try TrailWriter.open(layout: layout, signer: signer)
        let all = (0..<total).map { i in
            event(i, time: i < old ? t0 + Int64(i) : t0 + 590 * day + Int64(i), secret: i % 4 != 0, action: i % 4 == 0 ? .login : .read).canonicalJSON()
        }
        try w.append(Array(all[0..<400]))
        try w.append(Array(all[400...]))
    }
    var store: LocalArchiveStore { LocalArchiveStore(root: archiveDir.path + "/archive") }
    func archiver() -> Archiver { Archiver(layout: layout, verifier: signer.verifier, store: store, target: "local:" + store.root) }
    func verify() -> TrailVerifier.Report { TrailVerifier(layout: layout, verifier: signer.verifier).verify() }
}

@Suite struct PruneTests {
    @Test func archiveVerifyPruneThenTrailAndProofsStillVerify() async throws {
        let f = try TrailFixture()
        let nowDate = Date(timeIntervalSince1970: TimeInterval(f.now.seconds))

        // Without an archive nothing is pruned.
        await #expect(throws: (any Error).self) {
            _ = try await Pruner.run(layout: f.layout, signer: f.signer, policy: RetentionPolicy(), archiver: f.archiver(), now: f.now, dryRun: false)
        }
        #expect(!FileManager.default.fileExists(atPath: f.layout.prunedPath))

        let run = try await f.archiver().archive(now: nowDate, lockFor: 10 * 365 * day)
        #expect(run.bundles == 0..<3)
        let v = try await f.archiver().verify(now: nowDate)
        #expect(v.isValid, "\(v.problems)")
        #expect(v.bundlesChecked == 3)

        // Dry run changes nothing.
        let dry = try await Pruner.run(layout: f.layout, signer: f.signer, policy: RetentionPolicy(), archiver: f.archiver(), now: f.now, dryRun: true)
        #expect(dry.newMinimum == 512)
        #expect(FileManager.default.fileExists(atPath: f.layout.bundlePath(index: 0, width: 256)))

        let plan = try await Pruner.run(layout: f.layout, signer: f.signer, policy: RetentionPolicy(), archiver: f.archiver(), now: f.now, dryRun: false)
        // Entries 0..<600 expired; whole bundles: 512.
        #expect(plan.firstUnexpired == 600)
        #expect(plan.newMinimum == 512)
        #expect(plan.classes[.secretAccess] == 384 && plan.classes[.authentication] == 128)
        for b: UInt64 in 0..<2 {
            #expect(!FileManager.default.fileExists(atPath: f.layout.bundlePath(index: b, width: 256)))
            #expect(FileManager.default.fileExists(atPath: f.layout.tilePath(level: 0, index: b, width: 256)))
            let archived = f.store.root + "/" + TilePath.entries(index: b, width: 256)
            #expect(FileManager.default.fileExists(atPath: archived))
            #expect(!FileManager.default.isWritableFile(atPath: archived) || getuid() == 0)
            var st = stat()
            #expect(stat(archived, &st) == 0 && st.st_mode & 0o222 == 0)
        }
        #expect(FileManager.default.fileExists(atPath: f.layout.bundlePath(index: 2, width: 256)))

        // The trail verifies, and says it was pruned.
        let report = f.verify()
        #expect(report.isValid, "\(report.problems)")
        #expect(report.minimumIndex == 512 && report.prunedBundles == 2)
        #expect(report.entriesChecked == 1000 - 512)

        // An inclusion proof of a remaining entry verifies; a pruned one is refused clearly.
        let reader = try TrailReader(layout: f.layout, verifier: f.signer.verifier)
        #expect(reader.minimumIndex == 512)
        let proof = try reader.proof(index: 700)
        try Merkle.verifyInclusion(index: 700, size: reader.size, leafHash: Merkle.leafHash(proof.extra!), proof: proof.proof,
                                   root: reader.checkpoint.checkpoint.rootHash)
        #expect(throws: TrailError.self) { _ = try reader.entry(at: 3) }
        var seen: [UInt64] = []
        try reader.forEachEntry(in: 0..<520) { i, _ in seen.append(i) }
        #expect(seen == Array(512..<520))

        // The archive still verifies after pruning (against the tiles that stayed).
        let again = try await f.archiver().verify(now: nowDate)
        #expect(again.isValid, "\(again.problems)")

        // The trail keeps growing after pruning.
        let w = try TrailWriter.open(layout: f.layout, signer: f.signer)
        try w.append([event(5000, time: f.now.seconds).canonicalJSON()])
        #expect(f.verify().isValid)
    }

    @Test func tamperingIsStillCaughtAfterPruning() async throws {
        let f = try TrailFixture()
        let nowDate = Date(timeIntervalSince1970: TimeInterval(f.now.seconds))
        _ = try await f.archiver().archive(now: nowDate, lockFor: 365 * day)
        _ = try await Pruner.run(layout: f.layout, signer: f.signer, policy: RetentionPolicy(), archiver: f.archiver(), now: f.now, dryRun: false)
        // A pruned bundle's tile altered: the levels above and the root catch it.
        let tile = f.layout.tilePath(level: 0, index: 0, width: 256)
        var bytes = [UInt8](FileManager.default.contents(atPath: tile)!)
        bytes[5] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: tile))
        #expect(!f.verify().isValid)
        bytes[5] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: tile))
        #expect(f.verify().isValid)
        // A forged minimum index (not signed by the trail key) hiding a deleted bundle.
        try Data("custos.pruned/v1\ntest.example/trail\n768\n".utf8).write(to: URL(fileURLWithPath: f.layout.prunedPath))
        #expect(!f.verify().isValid)
    }

    @Test func pruneRefusesAnArchiveThatNoLongerVerifies() async throws {
        let f = try TrailFixture()
        let nowDate = Date(timeIntervalSince1970: TimeInterval(f.now.seconds))
        _ = try await f.archiver().archive(now: nowDate, lockFor: 365 * day)
        let archived = f.store.root + "/" + TilePath.entries(index: 1, width: 256)
        LocalArchiveStore.setImmutable(archived, false)
        chmod(archived, 0o644)
        var bytes = [UInt8](FileManager.default.contents(atPath: archived)!)
        bytes[bytes.count - 3] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: archived))
        await #expect(throws: (any Error).self) {
            _ = try await Pruner.run(layout: f.layout, signer: f.signer, policy: RetentionPolicy(), archiver: f.archiver(), now: f.now, dryRun: false)
        }
        #expect(FileManager.default.fileExists(atPath: f.layout.bundlePath(index: 0, width: 256)))
        #expect(!FileManager.default.fileExists(atPath: f.layout.prunedPath))
    }
}

/// S3 protocol against moto (`moto_server`): it accepts Object Lock headers and answers
/// `GET ?retention`, but does not enforce the lock (README: enforcement needs real S3).
@Suite struct MotoS3Tests {
    static func motoServer() -> String? {
        if let p = ProcessInfo.processInfo.environment["CUSTOS_MOTO_SERVER"] { return p }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let p = "\(dir)/moto_server"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    @Test func archiveToMotoAndReadBackCompliance() async throws {
        guard let moto = Self.motoServer() else {
            if ProcessInfo.processInfo.environment["CUSTOS_REQUIRE_MOTO"] == "1" {
                Issue.record("moto_server not found and CUSTOS_REQUIRE_MOTO=1 (pip install 'moto[server]')")
            }
            return
        }
        let port = Self.freePort()
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: moto)
        proc.arguments = ["-H", "127.0.0.1", "-p", String(port)]
        proc.standardOutput = FileHandle.nullDevice
        proc.standardError = FileHandle.nullDevice
        try proc.run()
        defer {
            // Children of Foundation's Process start with most signals blocked: SIGTERM, then SIGKILL.
            proc.terminate()
            let deadline = Date().addingTimeInterval(3)
            while proc.isRunning && Date() < deadline { usleep(10_000) }
            if proc.isRunning { kill(proc.processIdentifier, SIGKILL) }
            while proc.isRunning { usleep(10_000) }
        }

        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let client = S3Client(endpoint: "http://127.0.0.1:\(port)",
                              signer: SigV4(accessKey: "testing", secretKey: "testing", region: "us-east-1"), client: http)
        // Wait for moto to listen.
        var created = false
        for _ in 0..<100 {
            do { try await client.createBucket("custos-archive"); created = true; break } catch {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        #expect(created, "moto did not start on port \(port)")
        guard created else { try await http.shutdown(); return }

        do {
            try await Self.scenario(client)
        } catch {
            try await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    static func scenario(_ client: S3Client) async throws {
        let f = try TrailFixture()
        let nowDate = Date()
        let store = S3ArchiveStore(client: client, bucket: "custos-archive", prefix: "trail/prod")
        let archiver = Archiver(layout: f.layout, verifier: f.signer.verifier, store: store, target: "s3://custos-archive/trail/prod")
        let run = try await archiver.archive(now: nowDate, lockFor: 3000 * day)
        #expect(run.bundles == 0..<3)
        let v = try await archiver.verify(now: nowDate)
        #expect(v.isValid, "\(v.problems)")
        #expect(v.bundlesChecked == 3)
        let r = try await client.retention(bucket: "custos-archive", key: "trail/prod/" + TilePath.entries(index: 0, width: 256))
        #expect(r?.mode == "COMPLIANCE")
        if let until = r?.until { #expect(abs(until.timeIntervalSince(nowDate.addingTimeInterval(TimeInterval(3000 * day)))) < 2) } else { Issue.record("no retain-until date") }
        // An object written without a lock is reported.
        try await client.putLockedForTest(bucket: "custos-archive", key: "trail/prod/unlocked", body: [1, 2, 3])
        let p = try await store.protectionProblem("unlocked", retainUntil: nowDate, now: nowDate)
        #expect(p != nil)

        // Prune against the S3 archive (the entries are fresh: nothing expires now; with a
        // later clock the old ones would): then verify still passes.
        let later = EventTime(seconds: Int64(nowDate.timeIntervalSince1970) + 2000 * day)
        let plan = try await Pruner.run(layout: f.layout, signer: f.signer, policy: RetentionPolicy(), archiver: archiver, now: later, dryRun: false)
        #expect(plan.newMinimum == 768)
        #expect(f.verify().isValid)
    }
}

extension S3Client {
    /// A plain PUT without Object Lock (to see that verification notices).
    func putLockedForTest(bucket: String, key: String, body: [UInt8]) async throws {
        let r = try await request("PUT", bucket: bucket, key: key, headers: [], body: body)
        guard r.status == 200 else { throw Self.failure("PUT", r) }
    }
}
