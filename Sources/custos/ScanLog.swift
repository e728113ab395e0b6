import ArgumentParser
import CustosCore
import CustosScan
import Foundation

struct ScanLog: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan-log",
        abstract: "Find secrets leaked into a CI build log.",
        discussion: """
            Reads a build log (a file, or standard input when LOG is omitted or `-`; pipes and FIFOs \
            are read as a stream, in bounded memory) and looks for every given secret: raw; base64 \
            (standard and URL-safe, each of the three alignments, padded or not: the stable part is \
            matched); hex (lower and upper case); percent and form encoding; JSON, shell and XML/HTML \
            escaping; split over lines (wrapped base64), with CI timestamps \
            (`2024-05-10T17:46:49.0654321Z `), GitLab stream and section markers and ANSI colour \
            codes in the way; and truncated (12 bytes or more of a secret of 12 bytes or more with \
            high entropy). Secrets under 12 bytes, or with low entropy, must appear whole; under 8 \
            bytes, also as a whole word. Generic detectors also report AWS access key IDs, GitHub \
            tokens, Stripe keys, Slack tokens and webhooks, PEM private keys, JWTs (header starting \
            with alg, typ, kid, enc, cty, x5t, zip, jku or jwk) and high-entropy values assigned to names like password, secret, token or api_key.

            Secret values are read from the environment or a file, kept in memory only and wiped \
            once the matchers are built; no output, error or log line ever contains one. A finding \
            gives the line and column, the variant that matched (encoding, plus `+split-lines` and \
            `+truncated`), the bytes of the secret covered, the secret's name (or the detector's) \
            and an HMAC-SHA256 fingerprint of the secret: with --fingerprint-key-env the key comes \
            from that environment variable so fingerprints correlate across runs; without it a \
            random key is made for this run, and the output says so.

            Secrets file: lines NAME=VALUE (`#` comments), or a JSON object of name to value, where \
            a value may also be {"value": "...", "path": "secret/data/prod/db"} (the path is kept \
            in the findings). At most 10,000 secrets of at most 8,192 bytes; values under 4 bytes \
            are skipped with a warning.

            --report URL posts each finding of a NAMED secret (from --secret-env, \
            --secrets-env-prefix or --secrets-file) to a running `custos serve` as a \
            `custos.event/v1` event with action `leak`: the secret's path from the secrets file, \
            else its name; the run's pipeline context, read from the environment as for `custos ci \
            report` (each part overridable by the flags below); identity kind pipeline; reason the \
            variant, line:column and fingerprint (never the value); an id derived from the run, \
            the secret, the variant and the line, so reporting the same log twice gives \
            duplicates. The server's policy raises `leaked_secret` on them. Findings of the \
            generic detectors name no secret and are NOT reported (they stay in the output). \
            Credentials as for `custos ci report`: an ingest token from CUSTOS_TOKEN (or \
            --token-env NAME), or --github-oidc AUDIENCE. The report's summary goes to standard \
            error.

            Exit codes: 0 nothing found; 1 findings (also when they were reported); 2 bad usage or \
            input (unreadable log or secrets file, unset variable, too many or too long secrets, \
            no pipeline context or token with --report), or the report failed (server unreachable, \
            credentials refused, an HTTP error: the reason is printed on standard error, after the \
            findings).
            """)

    @Argument(help: ArgumentHelp("The build log (default: standard input).", valueName: "LOG"))
    var log: String?

    @Option(name: .customLong("secret-env"), help: ArgumentHelp("Look for the value of environment variable NAME, reported as NAME (repeatable). NAME=PATH also gives the secret's path in the store (secret/data/prod/db): kept in the findings, and what --report posts.", valueName: "NAME[=PATH]"))
    var secretEnv: [String] = []

    @Option(name: .customLong("secrets-env-prefix"), help: ArgumentHelp("Look for every environment variable whose name starts with PREFIX (repeatable).", valueName: "PREFIX"))
    var secretsEnvPrefix: [String] = []

    @Option(name: .customLong("secrets-file"), help: ArgumentHelp("Read secrets from FILE: NAME=VALUE lines, or a JSON object (see above).", valueName: "FILE"))
    var secretsFile: String?

    @Option(name: .customLong("fingerprint-key-env"), help: ArgumentHelp("Take the HMAC key for fingerprints from environment variable NAME (default: a random key per run).", valueName: "NAME"))
    var fingerprintKeyEnv: String?

    @Flag(help: "Print findings as NDJSON (one JSON object per line) instead of a table.")
    var json = false

    @Flag(help: "Write the log back with every match replaced by ***: to --mask-output, or to standard output (findings then go to standard error).")
    var mask = false

    @Option(name: .customLong("mask-output"), help: ArgumentHelp("Write the masked log to FILE (implies --mask).", valueName: "FILE"))
    var maskOutput: String?

    @Flag(name: .customLong("no-detectors"), help: "Only look for the given secrets, not for generic credential formats.")
    var noDetectors = false

    @Option(name: .customLong("report"), help: ArgumentHelp("Post the findings of named secrets (not the generic detectors') to the custos server at URL as `leak` events (see above).", valueName: "URL"))
    var reportURL: String?

    @OptionGroup(title: "Credentials (with --report)")
    var auth: ReportAuthOptions

    @OptionGroup(title: "Pipeline context (with --report)")
    var pipeline: PipelineOptions

    func run() throws {
        // --report: the context and the credential are checked before anything is scanned.
        var reporting: (context: AccessEvent.Pipeline, credential: ReportAuthOptions.Credential)?
        if reportURL != nil {
            let env = ProcessInfo.processInfo.environment
            reporting = (try pipeline.resolve(env), try auth.credential(env))
            _ = try IngestPoster.baseURL(reportURL!)
        } else if auth.anyGiven || pipeline.anyGiven {
            throw CLIError.usage("the credential and pipeline context flags apply only with --report URL")
        }
        var secrets: [ScanSecret] = []
        defer { for i in secrets.indices { secrets[i].wipe() } }
        for spec in secretEnv {
            var name = spec, path: String?
            if let eq = spec.firstIndex(of: "=") {
                name = String(spec[..<eq])
                path = String(spec[spec.index(after: eq)...])
                try checkText(path, "--secret-env \(name): the path")
            }
            guard !name.isEmpty else { throw CLIError.usage("--secret-env: empty variable name") }
            guard let v = envBytes(name) else { throw CLIError.usage("--secret-env: environment variable \(name) is not set") }
            secrets.append(ScanSecret(name: name, path: path, value: v))
        }
        if !secretsEnvPrefix.isEmpty {
            let names = ProcessInfo.processInfo.environment.keys.sorted()
            for prefix in secretsEnvPrefix {
                guard !prefix.isEmpty else { throw CLIError.usage("--secrets-env-prefix: empty prefix") }
                let matching = names.filter { $0.hasPrefix(prefix) && $0 != fingerprintKeyEnv }
                if matching.isEmpty { stderrPrint("custos: warning: no environment variable starts with \(prefix)") }
                for name in matching where !secrets.contains(where: { $0.name == name }) {
                    if let v = envBytes(name) { secrets.append(ScanSecret(name: name, value: v)) }
                }
            }
        }
        if let path = secretsFile {
            var bytes: [UInt8]
            do { bytes = try readAll(path) } catch { throw CLIError.usage("--secrets-file: cannot read \(path): \(error)") }
            defer { wipeBytes(&bytes) }
            do { secrets += try parseSecretsFile(bytes) } catch let e as SecretsInputError { throw CLIError.usage(e.description) }
        }

        let key: FingerprintKey
        if let name = fingerprintKeyEnv {
            guard var k = envBytes(name), !k.isEmpty else { throw CLIError.usage("--fingerprint-key-env: environment variable \(name) is not set or empty") }
            key = FingerprintKey(bytes: k)
            wipeBytes(&k)
        } else {
            key = FingerprintKey.random()
        }

        let matcher: SecretMatcher
        do {
            matcher = try SecretMatcher(secrets: &secrets, key: key, detectors: !noDetectors)
        } catch let e as SecretsInputError {
            throw CLIError.usage(e.description)
        }
        for name in matcher.skipped { stderrPrint("custos: warning: secret \(name) is shorter than 4 bytes; not looked for") }
        if matcher.secretCount == 0 {
            if noDetectors { throw CLIError.usage("nothing to look for: no secrets given (--secret-env, --secrets-env-prefix, --secrets-file) and --no-detectors") }
            stderrPrint("custos: note: no secrets given; generic detectors only")
        }

        // Input.
        let fd: Int32
        if let log, log != "-" {
            fd = open(log, O_RDONLY)
            guard fd >= 0 else { throw CLIError.usage("cannot open \(log): \(String(cString: strerror(errno)))") }
        } else {
            fd = 0
        }
        defer { if fd != 0 { close(fd) } }

        // Outputs.
        let masking = mask || maskOutput != nil
        var maskWriter: FDWriter?
        if masking {
            if let path = maskOutput {
                let ofd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                guard ofd >= 0 else { throw CLIError.usage("--mask-output: cannot create \(path): \(String(cString: strerror(errno)))") }
                maskWriter = FDWriter(fd: ofd, closes: true)
            } else {
                maskWriter = FDWriter(fd: 1, closes: false)
            }
        }
        let report = FDWriter(fd: masking && maskOutput == nil ? 2 : 1, closes: false)
        let keyNote = key.isRandom ? "random-per-run" : "stable"
        let scanner = LogScanner(matcher: matcher, mask: maskWriter.map { w in { w.write($0) } })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if json {
            scanner.onFinding = { f in
                if let d = try? encoder.encode(FindingLine(f, fingerprintKey: keyNote)) {
                    report.write(d); report.write("\n")
                }
            }
        }

        let chunk = 1 << 20
        let buf = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = read(fd, buf, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw CLIError.usage("cannot read \(log ?? "standard input"): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            scanner.feed(UnsafeRawBufferPointer(start: buf, count: n))
        }
        scanner.finish()
        maskWriter?.close()

        if !json {
            if scanner.findingCount > 0 {
                var rows = [["LINE:COL", "VARIANT", "COVERAGE", "SECRET", "FINGERPRINT"]]
                for f in scanner.findings {
                    var name = f.secretName
                    if let p = f.secretPath { name += " (\(p))" }
                    if f.detector != nil { name = "detector:" + name }
                    rows.append(["\(f.line):\(f.column)", f.variant, "\(f.matchedBytes)/\(f.totalBytes)", name,
                                 String(f.fingerprint.prefix(12 + 16))])
                }
                var widths = [Int](repeating: 0, count: 5)
                for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
                for r in rows {
                    var line = ""
                    for (i, c) in r.enumerated() { line += i == r.count - 1 ? c : c.padding(toLength: widths[i] + 2, withPad: " ", startingAt: 0) }
                    report.write(line + "\n")
                }
                if scanner.findingCount > scanner.findings.count {
                    report.write("(\(scanner.findingCount - scanner.findings.count) more findings not listed)\n")
                }
            }
            let secretsNote = "\(matcher.secretCount) secret(s)" + (noDetectors ? "" : " and generic detectors")
            report.write("scanned \(scanner.bytesRead) bytes for \(secretsNote): \(scanner.findingCount) finding(s)\n")
            report.write(key.isRandom
                ? "fingerprints: HMAC-SHA256 with a random per-run key (they do not correlate across runs; use --fingerprint-key-env NAME)\n"
                : "fingerprints: HMAC-SHA256 with the key from $\(fingerprintKeyEnv ?? "")\n")
        }
        report.flush()
        if let reportURL, let reporting {
            let builder = CIEvents(pipeline: reporting.context, identityFromToken: auth.githubOIDC != nil, time: CIEvents.now())
            let keyNote = key.isRandom ? " (random per-run key)" : ""
            let events = scanner.findings.filter { $0.detector == nil }.map {
                builder.leak($0.secretPath ?? $0.secretName, variant: $0.variant, line: $0.line, column: $0.column,
                             fingerprint: $0.fingerprint + keyNote)
            }
            let generic = scanner.findings.count - events.count
            var note = generic > 0 ? " (\(generic) generic-detector finding(s) not reported: they name no secret)" : ""
            if scanner.findingCount > scanner.findings.count {
                note += " (\(scanner.findingCount - scanner.findings.count) finding(s) past the listing limit not reported)"
            }
            if events.isEmpty {
                stderrPrint("custos: report: no findings of named secrets; nothing posted\(note)")
            } else {
                do {
                    let a = try postReport(events, url: reportURL, auth: auth, credential: reporting.credential)
                    if a.rejected > 0 {
                        throw CLIError.operational("the server rejected \(a.rejected) of \(events.count) event(s): \(a.rejections.joined(separator: "; "))")
                    }
                    stderrPrint("custos: reported \(events.count) leak(s) of \(runLabel(reporting.context)): accepted \(a.accepted), duplicates \(a.duplicates)\(note)")
                } catch let e as CLIError {
                    throw CLIError(message: "the leaks could not be reported (\(scanner.findingCount) finding(s)): \(e.message)", code: 2)
                }
            }
        }
        if scanner.findingCount > 0 {
            throw CLIError(message: "\(scanner.findingCount) leak(s) found", code: 1)
        }
    }
}

/// One NDJSON line of `scan-log --json`.
struct FindingLine: Encodable {
    var secret: String, path: String?, detector: String?, variant: String, encoding: String
    var splitLines: Bool, truncated: Bool, line: Int, column: Int, offset: Int, length: Int
    var matchedBytes: Int, totalBytes: Int, fingerprint: String, fingerprintKey: String
    init(_ f: Finding, fingerprintKey: String) {
        secret = f.secretName; path = f.secretPath; detector = f.detector; variant = f.variant; encoding = f.encoding
        splitLines = f.splitLines; truncated = f.truncated; line = f.line; column = f.column; offset = f.offset
        length = f.length; matchedBytes = f.matchedBytes; totalBytes = f.totalBytes; fingerprint = f.fingerprint
        self.fingerprintKey = fingerprintKey
    }
}

/// The value of an environment variable as bytes we own (so it can be wiped), without a `String`.
func envBytes(_ name: String) -> [UInt8]? {
    guard let p = getenv(name) else { return nil }
    let n = strlen(p)
    return [UInt8](UnsafeRawBufferPointer(start: p, count: n))
}

/// A whole file into a byte array we own.
func readAll(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw CLIError.usage(String(cString: strerror(errno))) }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { if errno == EINTR { continue }; wipeBytes(&out); throw CLIError.usage(String(cString: strerror(errno))) }
        if n == 0 { break }
        if out.count + n > 64 << 20 { wipeBytes(&out); throw CLIError.usage("larger than 64 MiB") }
        out.append(contentsOf: buf[0..<n])
    }
    wipeBytes(&buf)
    return out
}

/// Buffered writes to a file descriptor.
final class FDWriter {
    let fd: Int32
    let closes: Bool
    var buf: [UInt8] = []
    init(fd: Int32, closes: Bool) { self.fd = fd; self.closes = closes; buf.reserveCapacity(1 << 20) }
    func write(_ b: UnsafeRawBufferPointer) {
        buf.append(contentsOf: b)
        if buf.count >= 1 << 20 { flush() }
    }
    func write(_ d: Data) { d.withUnsafeBytes { write($0) } }
    func write(_ s: String) { var s = s; s.withUTF8 { write(UnsafeRawBufferPointer($0)) } }
    func flush() {
        var off = 0
        buf.withUnsafeBytes { p in
            while off < p.count {
                let n = Foundation.write(fd, p.baseAddress! + off, p.count - off)
                if n < 0 { if errno == EINTR { continue }; break }
                off += n
            }
        }
        buf.removeAll(keepingCapacity: true)
    }
    func close() {
        flush()
        if closes { Foundation.close(fd) }
    }
}
