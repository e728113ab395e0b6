import ArgumentParser
import CustosCore
import CustosServer
import Foundation

struct Ingest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Append audit-log records to the trail and the index.",
        discussion: """
            Reads each FILE ("-" for standard input) line by line. Each access (a request and \
            response pair sharing request.id) becomes one event; request and response bodies \
            are never read, so secret values never enter Custos. Lines that cannot be decoded \
            are reported with their line number and skipped. Events already in the trail (same \
            id) are counted as duplicates and not added again. On first use the data directory \
            and its signing key are created and the verifier key is printed.
            Exit 0 when every line was read (rejected lines are reported, not fatal); 2 for \
            bad arguments; 3 for I/O errors.
            """)

    @OptionGroup var data: DataOptions
    @Option(help: "Input format: vault or openbao (the same audit format; sets the source kind).")
    var format: String = "vault"
    @Option(help: ArgumentHelp("Name of the server the records come from (source.instance); part of each event's id.", valueName: "NAME"))
    var instance: String = "default"
    @Option(help: ArgumentHelp("Origin for a newly created trail key.", valueName: "NAME"))
    var origin: String?
    @Option(help: ArgumentHelp("Events per durable commit.", valueName: "N"))
    var batchSize: Int = 16_384
    @Flag(help: "Only decode and report (accepted = events that would be appended, duplicates not checked); write nothing.")
    var check = false
    @Flag(help: "Also print where the time went (decode vs. commit).")
    var stats = false
    @Flag(help: "No progress bar even on a terminal.")
    var quiet = false
    @Argument(help: ArgumentHelp("Audit log files ('-' for standard input).", valueName: "FILE"))
    var files: [String]

    func validate() throws {
        guard IngestFormat(rawValue: format) != nil else {
            throw ValidationError("--format must be one of: \(IngestFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard !files.isEmpty else { throw ValidationError("give at least one FILE to ingest") }
        guard (1...1_000_000).contains(batchSize) else { throw ValidationError("--batch-size must be 1...1000000") }
        guard !instance.isEmpty, instance.utf8.count <= 256 else { throw ValidationError("--instance must be 1...256 bytes") }
        for f in files where f != "-" && !FileManager.default.isReadableFile(atPath: f) {
            throw ValidationError("cannot read \(f)")
        }
    }

    func run() throws {
        let store = check ? nil : try DataStore(directory: data.data, origin: origin)
        if let s = store?.createdSigner {
            stderrPrint("custos: created a new trail in \(data.data); its verifier key (give it to your auditors):")
            print(s.vkey)
        }
        let ingestor = Ingestor(store: store, format: IngestFormat(rawValue: format)!, instance: instance, batchSize: batchSize)
        let showProgress = !quiet && isTerminal(2)
        let started = Date()
        var lastDraw = Date.distantPast
        for file in files {
            try ingestor.ingest(path: file) { done, total in
                guard showProgress, Date().timeIntervalSince(lastDraw) > 0.2 else { return }
                lastDraw = Date()
                let elapsed = max(0.001, Date().timeIntervalSince(started))
                let rate = Double(ingestor.acceptedSoFar) / elapsed
                if let total, total > 0 {
                    let frac = min(1, Double(done) / Double(total))
                    let width = 30
                    let filled = Int(frac * Double(width))
                    let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                    FileHandle.standardError.write(Data(String(format: "\r%@ [%@] %3.0f%%  %.0f events/s ", file, bar, frac * 100, rate).utf8))
                } else {
                    FileHandle.standardError.write(Data(String(format: "\r%@ %llu bytes  %.0f events/s ", file, done, rate).utf8))
                }
            }
        }
        let s = try ingestor.finish()
        if showProgress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        let elapsed = Date().timeIntervalSince(started)
        for (file, r) in s.rejections {
            stderrPrint("rejected \(file):\(r.line): \(r.reason)")
        }
        if s.rejected > s.rejections.count {
            stderrPrint("... and \(s.rejected - s.rejections.count) more rejected lines")
        }
        if stats {
            let t = store?.timings ?? .init()
            stderrPrint(String(format: "stats: %.2f s total; decoding and canonical encoding on the main thread, then on their own threads: de-duplication %.2f s, trail commit %.2f s, index %.2f s",
                               elapsed, t.prepare, t.trail, t.index))
        }
        if check { print("check only, nothing written:") }
        print("lines \(s.lines)  accepted \(s.accepted)  duplicates \(s.duplicates)  ignored \(s.ignored)  rejected \(s.rejected)  trail size \(s.trailSize)  (\(String(format: "%.2f", elapsed)) s)")
    }
}
