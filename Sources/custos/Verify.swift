import ArgumentParser
import CustosCore
import CustosServer
import CustosTrail
import Foundation

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Audit the trail: signature, every entry, every tile, the root, every kept checkpoint.",
        discussion: """
            Trusts nothing in the data directory but checks it against VKEY (the verifier key \
            printed by keygen, as text or a file holding it). Exit 0 when the trail is intact; \
            1 when anything was altered (each problem printed with the file and what is wrong); \
            2 for usage errors; 3 when a server could not be read. A pruned trail (`custos prune`) \
            verifies too: below its signed minimum index the level-0 tiles stand in for the \
            deleted entry bundles, and the report says "pruned below N".

            With --url it audits a running `custos serve` over HTTP instead: it downloads the \
            checkpoint, every tile and every entry bundle from /trail/ (an auditor token from \
            --token-file FILE or the CUSTOS_TOKEN environment variable) and checks them the same \
            way. --state FILE keeps the last checkpoint that verified; the next run then also \
            proves the server's tree still extends it, so a rolled-back or forked trail fails.

            --witness VKEY (repeatable) also requires cosignatures by those witnesses on the \
            checkpoint verified (the ones `custos serve` collected, README "Witnesses"): all of \
            them, or --quorum N. Missing ones are listed by name; the exit code is then 1.
            """)

    @OptionGroup var data: DataOptions
    @Option(help: ArgumentHelp("Verifier key (name+id+key) or a file holding it.", valueName: "VKEY"))
    var vkey: String
    @Option(help: ArgumentHelp("Audit a running server at URL (http or https) instead of --data.", valueName: "URL"))
    var url: String?
    @Option(help: ArgumentHelp("With --url: a file whose first line is an auditor token (else CUSTOS_TOKEN).", valueName: "FILE"))
    var tokenFile: String?
    @Option(help: ArgumentHelp("With --url: remember the verified checkpoint in FILE and require the next tree to extend it.", valueName: "FILE"))
    var state: String?
    @Option(help: ArgumentHelp("With an https --url: trust the CA certificate(s) in FILE (PEM) instead of the system's.", valueName: "FILE"))
    var caFile: String?
    @Option(help: ArgumentHelp("A witness's verifier key (name+id+key, type 0x04) or a file holding it; repeat for several.", valueName: "VKEY"))
    var witness: [String] = []
    @Option(help: ArgumentHelp("With --witness: how many of the witnesses must have cosigned the checkpoint (default: all).", valueName: "N"))
    var quorum: Int?
    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        if url == nil && (tokenFile != nil || state != nil || caFile != nil) { throw ValidationError("--token-file, --state and --ca-file go with --url") }
        if let quorum {
            guard !witness.isEmpty else { throw ValidationError("--quorum goes with --witness") }
            guard (1...witness.count).contains(quorum) else { throw ValidationError("--quorum must be 1...\(witness.count) (the number of --witness keys)") }
        }
    }

    func run() throws {
        let verifier = try loadVerifierKey(vkey)
        let witnesses = try witness.map { try loadWitnessKey($0) }
        let started = Date()
        let report: TrailVerifier.Report
        let note: [UInt8]
        if let url {
            let remote = try verifyRemote(url: url, verifier: verifier)
            report = remote.0
            note = remote.1
        } else {
            try requireDataDirectory(data.data)
            let layout = TrailLayout(dataDirectory: data.data)
            report = TrailVerifier(layout: layout, verifier: verifier).verify()
            // The checkpoint with the cosignatures `custos serve` collected for its size.
            let n = FileManager.default.contents(atPath: layout.checkpointPath).map { [UInt8]($0) } ?? []
            note = CosignatureStore.attach(note: n, data: data.data)
        }
        var cosigned: [WitnessCheck] = []
        var witnessProblem: String?
        if !witnesses.isEmpty && report.isValid {
            cosigned = witnesses.map { WitnessCheck(verifier: $0, note: note) }
            let need = quorum ?? witnesses.count
            let ok = cosigned.filter { $0.timestamp != nil }.count
            if ok < need {
                let missing = cosigned.filter { $0.timestamp == nil }
                witnessProblem = "\(ok) of \(witnesses.count) witness cosignatures on the checkpoint, \(need) required; "
                    + "not cosigned by: " + missing.map { "\($0.verifier.name) (\($0.problem ?? "?"))" }.joined(separator: "; ")
            }
        }
        let valid = report.isValid && witnessProblem == nil
        let elapsed = Date().timeIntervalSince(started)
        if json {
            var o: [String: Any] = [
                "valid": valid, "origin": report.origin, "size": report.size,
                "entries_checked": report.entriesChecked, "tiles_checked": report.tilesChecked,
                "checkpoints_checked": report.checkpointsChecked,
                "minimum_index": report.minimumIndex, "pruned_bundles": report.prunedBundles,
                "problems": report.problems.map { ["location": $0.location, "message": $0.message] },
            ]
            if let r = report.root { o["root"] = r.base64 }
            if let witnessProblem { o["witness_problem"] = witnessProblem }
            if !cosigned.isEmpty {
                o["witnesses"] = cosigned.map { w -> [String: Any] in
                    var x: [String: Any] = ["name": w.verifier.name, "cosigned": w.timestamp != nil]
                    if let t = w.timestamp { x["time"] = Int64(t) }
                    if let p = w.problem { x["problem"] = p }
                    return x
                }
            }
            let d = try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])
            print(String(decoding: d, as: UTF8.self))
        } else if let witnessProblem {
            print("trail intact (\(report.origin) size \(report.size)) but NOT WITNESSED: \(witnessProblem)")
        } else if report.isValid {
            print("trail OK: \(report.origin) size \(report.size) root \(report.root?.base64 ?? "-")")
            print("checked \(report.entriesChecked) entries, \(report.tilesChecked) tiles, \(report.checkpointsChecked) kept checkpoints in \(String(format: "%.2f", elapsed)) s")
            for w in cosigned {
                if let t = w.timestamp {
                    print("cosigned by witness \(w.verifier.name) at \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(t))))")
                } else {
                    print("not cosigned by witness \(w.verifier.name): \(w.problem ?? "?")")
                }
            }
            if report.minimumIndex > 0 {
                print("pruned below \(report.minimumIndex): \(report.prunedBundles) entry bundle(s) removed (their tiles still hash to the signed root)")
            }
        } else {
            print("TRAIL NOT VALID: \(report.problems.count) problem(s)")
            for p in report.problems.prefix(50) { print("  \(p)") }
            if report.problems.count > 50 { print("  ... and \(report.problems.count - 50) more") }
        }
        if !valid { throw ExitCode(1) }
    }

    func verifyRemote(url: String, verifier: NoteVerifier) throws -> (TrailVerifier.Report, [UInt8]) {
        let (client, owned) = try verifyHTTPClient(caFile: caFile)
        defer { if owned { try? client.syncShutdown() } }
        let remote = try RemoteTrail(url: url, token: try remoteToken(file: tokenFile), verifier: verifier, client: client)
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("custos-verify-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let layout = TrailLayout(dataDirectory: tmp)
        do { try FileManager.default.createDirectory(atPath: layout.historyDirectory, withIntermediateDirectories: true) } catch {
            throw CLIError.operational("cannot create a temporary directory: \(error)")
        }
        // The remembered checkpoint becomes a kept checkpoint of the copy: the verifier then
        // checks the server's tree against it (rollback, fork).
        if let state, FileManager.default.fileExists(atPath: state) {
            guard let bytes = FileManager.default.contents(atPath: state), bytes.count <= 1 << 20,
                  let old = try? SignedCheckpoint.open([UInt8](bytes), verifier: verifier) else {
                throw CLIError.usage("--state: \(state) is not a checkpoint signed by \(verifier.name)")
            }
            _ = FileManager.default.createFile(atPath: layout.historyPath(size: old.checkpoint.size), contents: bytes)
        }
        let result = runBlocking { () -> Result<(UInt64, [UInt8]), RemoteTrail.Failure> in
            do throws(RemoteTrail.Failure) { return .success(try await remote.mirror(into: layout)) } catch { return .failure(error) }
        }
        let note: [UInt8]
        switch result {
        case .success(let r): note = r.1
        case .failure(.refused(let m)): throw CLIError.usage(m)
        case .failure(let f): throw CLIError.operational("cannot read the trail from \(remote.base): \(f)")
        }
        var report = TrailVerifier(layout: layout, verifier: verifier).verify()
        report.problems = report.problems.map { p in
            var p = p
            if p.location.hasPrefix("checkpoints/") { p.location = "--state \(state ?? "")" }
            else { p.location = remote.base + "/" + p.location }
            return p
        }
        if report.isValid, let state {
            let t = state + ".tmp"
            guard FileManager.default.createFile(atPath: t, contents: Data(note)), rename(t, state) == 0 else {
                throw CLIError.operational("the trail verified but --state \(state) cannot be written")
            }
        }
        return (report, note)
    }
}

/// One witness's cosignature on the verified checkpoint: its time, or why there is none.
struct WitnessCheck {
    var verifier: CosignatureVerifier
    var timestamp: UInt64?
    var problem: String?

    init(verifier: CosignatureVerifier, note: [UInt8]) {
        self.verifier = verifier
        do { timestamp = try verifier.verify(note) } catch let e as NoteError {
            problem = e.code == .noVerifiedSignature ? "no cosignature" : e.message
        } catch {
            problem = "\(error)"
        }
    }
}

/// Reads a witness verifier key (type 0x04) given as text or as a file holding it.
func loadWitnessKey(_ arg: String) throws -> CosignatureVerifier {
    var text = arg
    if !arg.contains("+") || FileManager.default.fileExists(atPath: arg) {
        guard let data = FileManager.default.contents(atPath: arg) else {
            throw CLIError.usage("--witness: \(arg) is neither a witness verifier key (name+id+key) nor a readable file")
        }
        text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    do { return try CosignatureVerifier(vkey: text) } catch {
        throw CLIError.usage("--witness: not a witness verifier key (Ed25519 cosignature, type 0x04): \(error)")
    }
}

struct Proof: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an inclusion proof for one entry (C2SP tlog-proof).",
        discussion: """
            The proof carries the entry itself (base64, on the `extra` line), the Merkle \
            inclusion proof and the signed checkpoint, so `custos verify-proof` can check it \
            offline with only the verifier key.
            """)

    @OptionGroup var data: DataOptions
    @Option(help: ArgumentHelp("Write the proof to FILE instead of standard output.", valueName: "FILE"))
    var out: String?
    @Argument(help: "Trail index of the entry (as `query` prints it).")
    var index: UInt64

    func run() throws {
        try requireDataDirectory(data.data)
        let layout = TrailLayout(dataDirectory: data.data)
        guard let vkeyText = FileManager.default.contents(atPath: layout.verifierKeyPath) else {
            throw CLIError.operational("no verifier key at \(layout.verifierKeyPath)")
        }
        let verifier = try loadVerifierKey(String(decoding: vkeyText, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        let reader = try TrailReader(layout: layout, verifier: verifier)
        guard index < reader.size else {
            throw CLIError.usage("index \(index) is outside the trail (size \(reader.size))")
        }
        let text = try reader.proof(index: index).formatted()
        if let out {
            guard FileManager.default.createFile(atPath: out, contents: Data(text.utf8)) else {
                throw CLIError.operational("cannot write \(out)")
            }
        } else {
            print(text, terminator: "")
        }
    }
}

struct VerifyProof: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-proof",
        abstract: "Check a tlog-proof offline with only the verifier key.",
        discussion: """
            Checks the checkpoint's signature and that the entry (from the proof's extra line, \
            or --entry FILE, which must then match) is included in that checkpoint's tree. \
            Prints the entry on success. Exit 0 valid, 1 invalid, 2 usage errors.
            """)

    @Option(help: ArgumentHelp("Verifier key (name+id+key) or a file holding it.", valueName: "VKEY"))
    var vkey: String
    @Option(help: ArgumentHelp("The entry's canonical JSON, when the proof carries none.", valueName: "FILE"))
    var entry: String?
    @Argument(help: "The proof file ('-' for standard input).")
    var proof: String

    func run() throws {
        let verifier = try loadVerifierKey(vkey)
        let handle: FileHandle? = proof == "-" ? FileHandle.standardInput : FileHandle(forReadingAtPath: proof)
        // Read at most 1 MiB + 1 byte: a proof is a few KiB, and the input may be hostile.
        guard let handle else { throw CLIError.usage("cannot read \(proof)") }
        let data: Data
        do { data = try handle.read(upToCount: (1 << 20) + 1) ?? Data() } catch { throw CLIError.usage("cannot read \(proof): \(error)") }
        guard data.count <= 1 << 20 else { throw CLIError.usage("\(proof) is over 1 MiB; not a proof") }
        guard let text = String(data: data, encoding: .utf8) else { throw CLIError.failed("proof is not UTF-8") }
        let parsed: TlogProof
        do { parsed = try TlogProof.parse(text) } catch { throw CLIError.failed("invalid proof: \(error)") }
        let cp: SignedCheckpoint
        do { cp = try SignedCheckpoint.open(parsed.checkpoint, verifier: verifier) } catch {
            throw CLIError.failed("invalid proof: the checkpoint does not verify with \(verifier.name): \(error)")
        }
        var leaf: [UInt8]? = parsed.extra
        if let entry {
            guard let e = FileManager.default.contents(atPath: entry) else { throw CLIError.usage("cannot read --entry \(entry)") }
            var bytes = [UInt8](e)
            while bytes.last == 0x0A { bytes.removeLast() }
            if let extra = parsed.extra, extra != bytes {
                throw CLIError.failed("invalid proof: --entry differs from the entry the proof carries")
            }
            leaf = bytes
        }
        guard let leaf else { throw CLIError.usage("the proof carries no entry; give it with --entry FILE") }
        do {
            try Merkle.verifyInclusion(index: parsed.index, size: cp.checkpoint.size, leafHash: Merkle.leafHash(leaf),
                                       proof: parsed.proof, root: cp.checkpoint.rootHash)
        } catch {
            throw CLIError.failed("invalid proof: entry \(parsed.index) is not included in \(cp.checkpoint.origin) at size \(cp.checkpoint.size): \(error)")
        }
        print("proof OK: entry \(parsed.index) is in \(cp.checkpoint.origin) at size \(cp.checkpoint.size)")
        print(String(decoding: leaf, as: UTF8.self))
    }
}
