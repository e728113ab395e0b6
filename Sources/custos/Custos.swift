import ArgumentParser
import CustosCore
import CustosServer
import CustosStore
import CustosTrail
import Foundation

struct Custos: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "custos",
        abstract: "Watch every access to secrets; keep a signed trail nobody can quietly rewrite.",
        discussion: """
            Exit codes: 0 success; 1 the check failed (tampered trail, invalid proof, nothing \
            found where something must be); 2 bad usage or input; 3 an operational error (I/O, \
            a damaged data directory).
            """,
        subcommands: [Demo.self, Ingest.self, ScanLog.self, CICommand.self, Serve.self, Query.self, Export.self, BlastRadiusCommand.self, Alerts.self, EvidenceCommand.self, Investigations.self, IncidentCommand.self, SilenceCommand.self, TokenCommand.self, Verify.self, Proof.self, VerifyProof.self, Keygen.self, Reindex.self, PolicyCommand.self, WitnessCommand.self, ArchiveCommand.self, Prune.self])
}

/// Options every command that works on a data directory takes.
struct DataOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Data directory (trail, keys, index); $CUSTOS_DATA when set.", valueName: "DIR"))
    var data: String = ProcessInfo.processInfo.environment["CUSTOS_DATA"] ?? "custos-data"
}

/// An error that says what went wrong and picks the exit code.
struct CLIError: Error, CustomStringConvertible {
    var message: String
    var code: Int32
    var description: String { message }
    static func usage(_ m: String) -> CLIError { CLIError(message: m, code: 2) }
    static func failed(_ m: String) -> CLIError { CLIError(message: m, code: 1) }
    static func operational(_ m: String) -> CLIError { CLIError(message: m, code: 3) }
}

func stderrPrint(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

/// Reads a verifier key given as text or as a file holding it.
func loadVerifierKey(_ arg: String) throws -> NoteVerifier {
    var text = arg
    if !arg.contains("+") || FileManager.default.fileExists(atPath: arg) {
        guard let data = FileManager.default.contents(atPath: arg) else {
            throw CLIError.usage("--vkey: \(arg) is neither a verifier key (name+id+key) nor a readable file")
        }
        text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    do {
        return try NoteVerifier(vkey: text)
    } catch {
        throw CLIError.usage("--vkey: not a valid Ed25519 verifier key: \(error)")
    }
}

func requireDataDirectory(_ dir: String) throws {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
        throw CLIError.usage("no data directory at \(dir) (use --data DIR, or ingest something first)")
    }
}

/// Opens `dir` for reading (a usage error when it is not a data directory or its index does not
/// belong to its trail) and warns on stderr when the index lags the trail.
func openReader(_ dir: String) throws -> EventReader {
    try requireDataDirectory(dir)
    let reader: EventReader
    do { reader = try EventReader(directory: dir) } catch let e as IndexError { throw CLIError.usage(e.message) }
    if reader.lag > 0 {
        stderrPrint("custos: warning: the index is \(reader.lag) entries behind the trail (an interrupted ingest?); run `custos reindex` to include them")
    }
    return reader
}

// Entry point: ArgumentParser's usage errors exit 2 here, and our own errors carry their code.
@main
struct Main {
    static func main() {
        do {
            var command = try Custos.parseAsRoot()
            try command.run()
        } catch let e as CLIError {
            stderrPrint("custos: \(e.message)")
            exit(e.code)
        } catch let e as TrailError {
            stderrPrint("custos: \(e.message)")
            exit(e.code == .invalidArgument ? 2 : 3)
        } catch let e as IndexError {
            stderrPrint("custos: \(e.message)")
            exit(3)
        } catch let e as IngestError {
            stderrPrint("custos: \(e.message)")
            exit(3)
        } catch {
            let code = Custos.exitCode(for: error)
            if code == .success {
                Custos.exit(withError: error)
            }
            if code == .validationFailure || error is ValidationError {
                stderrPrint(Custos.fullMessage(for: error))
                exit(2)
            }
            if code.rawValue == 1 && !(error is ExitCode) {
                // Unexpected error types: report them as operational.
                stderrPrint("custos: \(error)")
                exit(3)
            }
            Custos.exit(withError: error)
        }
    }
}

/// Runs async work from a synchronous command and waits for it (the CLI's commands are
/// synchronous; the notifiers are async).
final class BlockingBox<T: Sendable>: @unchecked Sendable { var value: T?; init() {} }

func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let box = BlockingBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        box.value = await body()
        done.signal()
    }
    done.wait()
    return box.value!
}
