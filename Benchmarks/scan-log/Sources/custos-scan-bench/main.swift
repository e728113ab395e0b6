// Throughput of the scan-log engine on one core (Benchmarks/scan-log/README.md).
//
//   custos-scan-bench LOG SECRETS_FILE [RUNS] [--no-detectors] [--check LEAKS]
//
// Builds the matcher once (timed apart), then RUNS times streams LOG through a LogScanner
// in 1 MiB reads (as `custos scan-log` does) on this one thread, and prints each run's
// MB/s (10^6 bytes per second of wall time), the median, and the findings by encoding.
// --check LEAKS compares the findings with the generator's list of leaks (names and
// encodings) and prints how many were found.
import CustosScan
import Foundation

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

func cpuTime() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

var args = Array(CommandLine.arguments.dropFirst())
let noDetectors = args.contains("--no-detectors")
args.removeAll { $0 == "--no-detectors" }
var checkFile: String?
if let i = args.firstIndex(of: "--check"), i + 1 < args.count { checkFile = args[i + 1]; args.removeSubrange(i...(i + 1)) }
guard args.count >= 2 else {
    FileHandle.standardError.write(Data("usage: custos-scan-bench LOG SECRETS_FILE [RUNS] [--no-detectors] [--check LEAKS]\n".utf8))
    exit(2)
}
let logPath = args[0], secretsPath = args[1]
let runs = args.count > 2 ? Int(args[2]) ?? 3 : 3

guard let sdata = FileManager.default.contents(atPath: secretsPath) else { print("cannot read \(secretsPath)"); exit(2) }
var secrets = try parseSecretsFile([UInt8](sdata))
let t0 = now()
let matcher = try SecretMatcher(secrets: &secrets, key: FingerprintKey(bytes: Array("bench".utf8)), detectors: !noDetectors)
let buildTime = now() - t0
print("matcher: \(matcher.secretCount) secrets, \(matcher.needleCount) needles, built in \(String(format: "%.3f", buildTime)) s; detectors \(noDetectors ? "off" : "on")")

let chunk = 1 << 20
let buf = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
var rates: [Double] = []
var lastFindings: [Finding] = []
for run in 1...runs {
    let fd = open(logPath, O_RDONLY)
    guard fd >= 0 else { print("cannot open \(logPath)"); exit(2) }
    let scanner = LogScanner(matcher: matcher)
    let start = now(), cpu0 = cpuTime()
    while true {
        let n = read(fd, buf, chunk)
        if n <= 0 { break }
        scanner.feed(UnsafeRawBufferPointer(start: buf, count: n))
    }
    scanner.finish()
    let wall = now() - start, cpu = cpuTime() - cpu0
    close(fd)
    let mbps = Double(scanner.bytesRead) / wall / 1e6
    rates.append(mbps)
    lastFindings = scanner.findings
    print(String(format: "run %d: %d bytes in %.3f s (cpu %.3f s): %.1f MB/s, %d findings", run, scanner.bytesRead, wall, cpu, mbps, scanner.findingCount))
}
let sorted = rates.sorted()
print(String(format: "median: %.1f MB/s over %d runs", sorted[sorted.count / 2], runs))
var byEncoding: [String: Int] = [:]
for f in lastFindings { byEncoding[f.variant, default: 0] += 1 }
print("findings by variant: " + byEncoding.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))

if let checkFile, let text = try? String(contentsOfFile: checkFile, encoding: .utf8) {
    let expected = text.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
    let names = Set(lastFindings.map(\.secretName))
    var missed: [String] = []
    for e in expected where !names.contains(e[0]) { missed.append("\(e[0]) (\(e[1]))") }
    print("leaks found: \(expected.count - missed.count)/\(expected.count)" + (missed.isEmpty ? "" : "; missed: " + missed.prefix(20).joined(separator: ", ")))
}
