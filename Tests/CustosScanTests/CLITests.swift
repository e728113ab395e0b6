import Foundation
import Testing

/// Runs the built `custos scan-log` and checks exit codes and that no output holds a value.
@Suite struct ScanLogCLITests {
    let secret = "s3cr3t-Xk9fQ2vLm8pRz4TbW7yN"
    let other = "Zq8!v r/Lp\"k&<'>$x`7mW;u+=%"

    struct Result { var code: Int32; var out: String; var err: String }

    func custosBinary() throws -> URL {
        let fm = FileManager.default
        if let p = ProcessInfo.processInfo.environment["CUSTOS_BIN"], !p.isEmpty { return URL(fileURLWithPath: p) }
        var starts: [URL] = []
        if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") { starts.append(URL(fileURLWithPath: exe)) }
        starts.append(Bundle.main.bundleURL)
        starts += Bundle.allBundles.map(\.bundleURL)
        for start in starts {
            var dir = start.resolvingSymlinksInPath().deletingLastPathComponent()
            for _ in 0..<4 {
                let c = dir.appendingPathComponent("custos").path
                if fm.isExecutableFile(atPath: c) { return URL(fileURLWithPath: c) }
                dir = dir.deletingLastPathComponent()
            }
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for c in [".build/debug/custos", ".build/x86_64-unknown-linux-gnu/debug/custos", ".build/aarch64-unknown-linux-gnu/debug/custos"] {
            let p = root.appendingPathComponent(c).path
            if fm.isExecutableFile(atPath: p) { return URL(fileURLWithPath: p) }
        }
        throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "custos binary not found; build it or set CUSTOS_BIN"])
    }

    func run(_ args: [String], env: [String: String] = [:], stdin: Data? = nil) throws -> Result {
        let p = Process()
        p.executableURL = try custosBinary()
        p.arguments = ["scan-log"] + args
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        p.environment = e
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out; p.standardError = err; p.standardInput = inp
        try p.run()
        if let stdin { inp.fileHandleForWriting.write(stdin) }
        try inp.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let r = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(code: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: r, as: UTF8.self))
    }

    func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("custos-scan-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    func noValue(_ r: Result) {
        for s in [secret, other, String(secret.prefix(12)), Data(secret.utf8).base64EncodedString()] {
            #expect(!r.out.contains(s) && !r.err.contains(s), "output holds a secret value")
        }
    }

    @Test func exitCodesAndNoValues() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let leaky = dir.appendingPathComponent("leaky.log"), clean = dir.appendingPathComponent("clean.log")
        try Data("2024-05-10T17:46:49.0654321Z token=\(secret)\nb64 \(Data(("x" + other).utf8).base64EncodedString())\n".utf8).write(to: leaky)
        try Data("2024-05-10T17:46:49.0654321Z all good\n".utf8).write(to: clean)
        let secretsFile = dir.appendingPathComponent("secrets.json")
        let json = try JSONSerialization.data(withJSONObject: ["OTHER": ["value": other, "path": "secret/data/ci/other"]])
        try json.write(to: secretsFile)
        let env = ["CI_TOKEN": secret, "CUSTOSTEST_TOKEN": secret, "FP_KEY": "correlate-me"]

        var r = try run(["--secret-env", "CI_TOKEN", "--secrets-file", secretsFile.path, leaky.path], env: env)
        #expect(r.code == 1)
        #expect(r.out.contains("CI_TOKEN") && r.out.contains("OTHER (secret/data/ci/other)"))
        #expect(r.out.contains("base64-std/offset1"))
        #expect(r.out.contains("random per-run key"))
        noValue(r)

        r = try run(["--secret-env", "CI_TOKEN", clean.path], env: env)
        #expect(r.code == 0)
        noValue(r)

        // JSON, a stable fingerprint key, the log on standard input.
        r = try run(["--secrets-env-prefix", "CUSTOSTEST_", "--fingerprint-key-env", "FP_KEY", "--json", "-"], env: env,
                    stdin: try Data(contentsOf: leaky))
        #expect(r.code == 1)
        let lines = r.out.split(separator: "\n")
        #expect(lines.count == 1)
        let obj = try #require(JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(obj["secret"] as? String == "CUSTOSTEST_TOKEN")
        #expect(obj["variant"] as? String == "raw")
        #expect(obj["fingerprintKey"] as? String == "stable")
        let fp1 = obj["fingerprint"] as? String
        let again = try run(["--secret-env", "CI_TOKEN", "--fingerprint-key-env", "FP_KEY", "--json", leaky.path], env: env)
        let obj2 = try #require(JSONSerialization.jsonObject(with: Data(again.out.split(separator: "\n")[0].utf8)) as? [String: Any])
        #expect(obj2["fingerprint"] as? String == fp1)
        noValue(r)

        // Masking to a file.
        let masked = dir.appendingPathComponent("masked.log")
        r = try run(["--secret-env", "CI_TOKEN", "--secrets-file", secretsFile.path, "--mask-output", masked.path, leaky.path], env: env)
        #expect(r.code == 1)
        let m = try String(contentsOf: masked, encoding: .utf8)
        #expect(m.hasPrefix("2024-05-10T17:46:49.0654321Z token=***\nb64 "))
        #expect(!m.contains(secret))
        noValue(r)

        // Masking to standard output: the report goes to standard error.
        r = try run(["--secret-env", "CI_TOKEN", "--mask", leaky.path], env: env)
        #expect(r.code == 1)
        #expect(r.out.hasPrefix("2024-05-10T17:46:49.0654321Z token=***\n"))
        #expect(r.err.contains("CI_TOKEN"))
        #expect(!r.out.contains(secret))

        // Usage and input errors: 2.
        r = try run(["--secret-env", "NOT_SET_ANYWHERE_42", leaky.path], env: env)
        #expect(r.code == 2)
        r = try run(["--secret-env", "CI_TOKEN", dir.appendingPathComponent("missing.log").path], env: env)
        #expect(r.code == 2)
        try Data("{\"A\": \"\(secret)\", oops".utf8).write(to: secretsFile)
        r = try run(["--secrets-file", secretsFile.path, leaky.path], env: env)
        #expect(r.code == 2)
        noValue(r)
        r = try run(["--bogus"], env: env)
        #expect(r.code == 2)
    }
}
