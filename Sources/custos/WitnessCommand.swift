import ArgumentParser
import CustosCore
import CustosServer
import Foundation
import Logging
import ServiceLifecycle

struct WitnessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "witness",
        abstract: "Run a tlog witness: cosign the checkpoints of logs that only ever grow.",
        discussion: """
            A witness (c2sp.org/tlog-witness) belongs in another trust domain than the log it \
            watches: it keeps the last checkpoint it cosigned for each log and cosigns a new one \
            only with a proof that it extends that one, so a log that rolls back or forks its \
            trail can no longer collect cosignatures. README "Witnesses".
            """,
        subcommands: [WitnessKeygen.self, WitnessServe.self])
}

struct WitnessKeygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Create a witness's Ed25519 cosigning key and print its verifier key.",
        discussion: """
            Writes DIR/witness.key (mode 0600, secret) and DIR/witness.vkey (give it to the \
            log's operator for `witnesses:` and to auditors for `custos verify --witness`). \
            Refuses to replace an existing key.
            """)

    @Option(help: ArgumentHelp("The witness's key name: no spaces or '+' (a schema-less URL is recommended).", valueName: "NAME"))
    var name: String
    @Option(help: ArgumentHelp("Directory for witness.key and witness.vkey.", valueName: "DIR"))
    var out: String

    func run() throws {
        let signer: CosignatureSigner
        do { signer = try CosignatureSigner.generate(name: name) } catch let e as NoteError {
            throw CLIError.usage("--name: \(e.message)")
        }
        let keyPath = out + "/witness.key", vkeyPath = out + "/witness.vkey"
        let fm = FileManager.default
        guard !fm.fileExists(atPath: keyPath) else { throw CLIError.usage("\(keyPath) exists already; refusing to replace a witness key") }
        do { try fm.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw CLIError.operational("cannot create \(out): \(error)")
        }
        // O_EXCL with mode 0600: the secret is never readable by others, not even briefly.
        let fd = open(keyPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CLIError.operational("cannot create \(keyPath): \(String(cString: strerror(errno)))") }
        let bytes = Array((signer.skey + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced else { throw CLIError.operational("cannot write \(keyPath)") }
        guard fm.createFile(atPath: vkeyPath, contents: Data((signer.vkey + "\n").utf8)) else {
            throw CLIError.operational("cannot write \(vkeyPath)")
        }
        print(signer.vkey)
    }
}

struct WitnessServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the tlog-witness API (POST /add-checkpoint) for the logs in the config.",
        discussion: """
            The config (YAML) names the listen address (default 127.0.0.1:7380), the state \
            directory, the key from `custos witness keygen` and the logs (origin and checkpoint \
            verifier key each). The latest cosigned checkpoint of each log is kept in the state \
            directory and survives restarts. GET /<sha256(origin) hex>/checkpoint serves it. \
            SIGTERM or SIGINT stop it. Exit 2 for a bad configuration, 3 when it cannot start.
            """)

    @Option(help: ArgumentHelp("Configuration file (YAML).", valueName: "FILE")) var config: String
    @Option(help: ArgumentHelp("HOST:PORT to listen on (overrides the config).", valueName: "ADDR")) var listen: String?

    func run() throws {
        var c: WitnessConfig
        do { c = try WitnessConfig.load(path: config) } catch {
            for p in error.problems { stderrPrint("\(config): \(p)") }
            throw CLIError.usage("\(config): \(error.problems.count) problem\(error.problems.count == 1 ? "" : "s"); not started")
        }
        if let listen {
            guard let (h, p) = ServeConfig.hostPort(listen) else { throw CLIError.usage("--listen: expected HOST:PORT, e.g. 127.0.0.1:7380") }
            c.host = h; c.port = p
        }
        guard let keyData = FileManager.default.contents(atPath: c.key), keyData.count <= 4096 else {
            throw CLIError.usage("key: cannot read \(c.key) (create one with `custos witness keygen`)")
        }
        let signer: CosignatureSigner
        do { signer = try CosignatureSigner(skey: String(decoding: keyData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) } catch {
            throw CLIError.usage("key: \(c.key) is not a witness key: \(error)")
        }
        let witness: Witness
        do { witness = try Witness(signer: signer, logs: c.logs, stateDirectory: c.state) } catch {
            throw CLIError.operational("cannot open the witness state \(c.state): \(error)")
        }
        var logger = Logger(label: "custos-witness")
        logger.logLevel = .info
        let app = buildWitnessApplication(witness: witness, host: c.host, port: c.port, logger: logger)
        stderrPrint("custos: witness \(signer.name) for \(c.logs.map(\.origin).joined(separator: ", ")) on http://\(c.host.contains(":") ? "[\(c.host)]" : c.host):\(c.port)")
        fflush(nil)
        let failure = runBlocking { () async -> String? in
            do { try await app.runService(); return nil } catch { return "\(error)" }
        }
        if let failure { throw CLIError.operational("the witness stopped: \(failure)") }
        stderrPrint("custos: witness stopped")
    }
}
