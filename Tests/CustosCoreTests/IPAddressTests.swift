import Testing
@testable import CustosCore

@Suite("IPAddress")
struct IPAddressTests {
    @Test func validIPv4() throws {
        for (text, value) in [("0.0.0.0", UInt32(0)), ("1.2.3.4", 0x0102_0304), ("255.255.255.255", 0xFFFF_FFFF),
                              ("10.0.0.1", 0x0A00_0001), ("192.168.100.200", 0xC0A8_64C8), ("100.0.10.0", 0x6400_0A00)] {
            let ip = try #require(IPAddress(text), "\(text)")
            #expect(ip.isIPv4)
            #expect(ip.ipv4Value == value)
            #expect(ip == IPAddress(ipv4: value))
            #expect(ip.description == text)
            // Stored v4-mapped.
            #expect(ip.high == 0 && ip.low == 0x0000_FFFF_0000_0000 | UInt64(value))
        }
    }

    @Test func invalidIPv4() {
        for text in ["", "1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.010", "1.2.3.00", "256.1.1.1", "1.2.3.256",
                     "1.2.3.1000", "1..3.4", ".1.2.3", "1.2.3.", "1.2.3.4 ", " 1.2.3.4", "1.2.3.-4", "+1.2.3.4",
                     "1.2.3.4/8", "0x1.2.3.4", "1.2.3.a", "1,2,3,4", "1.2.3.4\0", "１.2.3.4", "999.999.999.999"] {
            #expect(IPAddress(text) == nil, "\(text.debugDescription) must be rejected")
        }
    }

    @Test func validIPv6() throws {
        let cases: [(String, String)] = [
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("2001:db8::1", "2001:db8::1"),
            ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),          // first of two equal runs
            ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),                // the longer run
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),       // a single zero group stays
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
            ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),                 // "::" for one group on input
            ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
            ("fe80::abcd:ef01", "fe80::abcd:ef01"),
            ("FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::FFFF:0102:0304", "::ffff:1.2.3.4"),
            ("::1.2.3.4", "::102:304"),
            ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
            ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
            ("0:0:0:0:0:0:0:0", "::"),
            ("0:0:1::", "0:0:1::"),
            ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
        ]
        for (text, canonical) in cases {
            let ip = try #require(IPAddress(text), "\(text)")
            #expect(!ip.isIPv4, "\(text)")
            #expect(ip.description == canonical, "\(text)")
            // The canonical text parses back to the same address.
            #expect(IPAddress(canonical) == ip, "\(canonical)")
        }
        let ip = try #require(IPAddress("2001:db8::ff00:42:8329"))
        #expect(ip.bytes == [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0x00, 0x00, 0x42, 0x83, 0x29])
        #expect(IPAddress(bytes: ip.bytes) == ip)
        #expect(IPAddress(bytes: [1, 2, 3, 4]) == IPAddress("1.2.3.4"))
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
        #expect(IPAddress(bytes: [UInt8](repeating: 0, count: 17)) == nil)
    }

    @Test func invalidIPv6() {
        for text in [":", ":::", "::::", "1:::2", "1::2::3", "::1::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8::",
                     "::1:2:3:4:5:6:7:8", "1:", ":1", "1:2:3:4:5:6:7:8:", ":1:2:3:4:5:6:7:8", "1::2:", ":1::2",
                     "12345::", "g::", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3", "::1.2.3.256", "::01.2.3.4",
                     "1.2.3.4::", "::1.2.3.4:5", "fe80::1%eth0", "fe80::1%1", "[::1]", " ::1", "::1 ", "::-1",
                     "1:2:3:4:5:6:7:8:1.2.3.4", "::ffff:1.2.3.4.5", "0x1::", "1::2:3:4:5:6:7:8"] {
            #expect(IPAddress(text) == nil, "\(text.debugDescription) must be rejected")
        }
    }

    @Test func mappedForms() throws {
        let v4 = try #require(IPAddress("1.2.3.4"))
        let mapped = try #require(IPAddress("::ffff:1.2.3.4"))
        #expect(v4 != mapped)                       // different text families
        #expect(v4.bytes == mapped.bytes)           // same 128 bits
        #expect(mapped.isIPv4Mapped && v4.isIPv4Mapped)
        #expect(mapped.unmapped == v4)
        #expect(v4.unmapped == v4)
        #expect(mapped.ipv4Value == 0x0102_0304)
        let plain = try #require(IPAddress("2001:db8::1"))
        #expect(plain.ipv4Value == nil && !plain.isIPv4Mapped && plain.unmapped == plain)
        // Only v4-mapped bits may carry the IPv4 flag.
        #expect(!IPAddress(high: 0, low: 1, isIPv4: true).isIPv4)
        #expect(IPAddress(1, 2, 3, 4) == v4)
        #expect(Set([v4, mapped, v4]).count == 2)
    }

    @Test func substringsParse() throws {
        let text = "x 10.1.2.3 y"
        let part = text.split(separator: " ")[1]
        #expect(IPAddress(part) == IPAddress("10.1.2.3"))
        #expect(IPAddress(String(repeating: "1", count: 100)) == nil)
    }
}

@Suite("CIDR")
struct CIDRTests {
    func cidr(_ s: String) throws -> CIDR { try CIDR(parsing: s) }
    func ip(_ s: String) throws -> IPAddress { try #require(IPAddress(s), "\(s)") }

    @Test func parsesAndNormalises() throws {
        #expect(try cidr("10.0.0.0/8").description == "10.0.0.0/8")
        #expect(try cidr("10.1.2.3/8").description == "10.0.0.0/8")           // host bits cleared
        #expect(try cidr("10.1.2.3/8") == cidr("10.0.0.0/8"))
        #expect(try cidr("192.168.1.77/32").description == "192.168.1.77/32")
        #expect(try cidr("255.255.255.255/0").description == "0.0.0.0/0")
        #expect(try cidr("2001:db8::1/32").description == "2001:db8::/32")
        #expect(try cidr("2001:DB8:ffff::/33").description == "2001:db8:8000::/33")
        #expect(try cidr("::/0").description == "::/0")
        #expect(try cidr("::1/128").description == "::1/128")
        #expect(try cidr("::ffff:0:0/96").description == "::ffff:0.0.0.0/96")
        #expect(try cidr("10.0.0.0/8").isIPv4 && !cidr("::/0").isIPv4)
        #expect(try cidr("10.9.9.9/8").network == ip("10.0.0.0"))
        #expect(try cidr("10.9.9.9/8").prefixLength == 8)
        #expect(try CIDR(ip("172.16.5.4"), prefixLength: 12).description == "172.16.0.0/12")
        #expect(throws: CIDRError.self) { try CIDR(ip("1.2.3.4"), prefixLength: 33) }
        #expect(throws: CIDRError.self) { try CIDR(ip("::1"), prefixLength: -1) }
    }

    @Test func rejectsWithMessages() {
        func failure(_ s: String) -> CIDRError? {
            do throws(CIDRError) { _ = try CIDR(parsing: s); return nil } catch { return error }
        }
        #expect(failure("10.0.0.0") == .missingPrefix(input: "10.0.0.0"))
        #expect(failure("10.0.0.0")?.description.contains("no prefix length") == true)
        #expect(failure("10.0.0.0/") == .invalidPrefix(input: "10.0.0.0/", prefix: ""))
        #expect(failure("10.0.0.0/")?.description.contains("empty prefix") == true)
        #expect(failure("10.0.0.0/33") == .prefixOutOfRange(input: "10.0.0.0/33", prefix: "33", maximum: 32))
        #expect(failure("10.0.0.0/33")?.description == "CIDR \"10.0.0.0/33\" has prefix length 33, out of range 0...32 for IPv4")
        #expect(failure("::/129") == .prefixOutOfRange(input: "::/129", prefix: "129", maximum: 128))
        #expect(failure("::/129")?.description.contains("0...128 for IPv6") == true)
        #expect(failure("::/99999999999999999999999") == .prefixOutOfRange(input: "::/99999999999999999999999", prefix: "99999999999999999999999", maximum: 128))
        for bad in ["10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/ 8", "10.0.0.0/8 ", "10.0.0.0/08", "10.0.0.0/8/9", "10.0.0.0/x", "10.0.0.0/0x8"] {
            guard case .invalidPrefix = failure(bad) else { Issue.record("\(bad) should have an invalid prefix, got \(String(describing: failure(bad)))"); continue }
            #expect(failure(bad)?.description.contains("not a plain decimal number") == true)
        }
        #expect(failure("10.0.0/8") == .invalidAddress(input: "10.0.0/8", address: "10.0.0"))
        #expect(failure("/8") == .invalidAddress(input: "/8", address: ""))
        #expect(failure("fe80::1%eth0/64") == .invalidAddress(input: "fe80::1%eth0/64", address: "fe80::1%eth0"))
        #expect(failure("300.0.0.0/8")?.description == "CIDR \"300.0.0.0/8\" has \"300.0.0.0\", which is not a valid IPv4 or IPv6 address")
    }

    @Test func containsIPv4() throws {
        let net = try cidr("192.168.0.0/16")
        #expect(try net.contains(ip("192.168.0.0")))
        #expect(try net.contains(ip("192.168.255.255")))
        #expect(try !net.contains(ip("192.169.0.0")))
        #expect(try !net.contains(ip("192.167.255.255")))
        // The v4-mapped IPv6 form matches too; other IPv6 addresses never do.
        #expect(try net.contains(ip("::ffff:192.168.1.1")))
        #expect(try !net.contains(ip("::192.168.1.1")))
        #expect(try !net.contains(ip("2001:db8::1")))
        let all = try cidr("0.0.0.0/0")
        #expect(try all.contains(ip("0.0.0.0")) && all.contains(ip("255.255.255.255")) && all.contains(ip("::ffff:8.8.8.8")))
        #expect(try !all.contains(ip("::")) && !all.contains(ip("::1")) && !all.contains(ip("ffff::")))
        let host = try cidr("8.8.8.8/32")
        #expect(try host.contains(ip("8.8.8.8")) && !host.contains(ip("8.8.8.9")) && !host.contains(ip("8.8.8.7")))
        let odd = try cidr("10.0.0.128/25")
        #expect(try odd.contains(ip("10.0.0.200")) && !odd.contains(ip("10.0.0.127")))
        let one = try cidr("128.0.0.0/1")
        #expect(try one.contains(ip("200.1.1.1")) && !one.contains(ip("127.255.255.255")))
    }

    @Test func containsIPv6() throws {
        let net = try cidr("2001:db8::/32")
        #expect(try net.contains(ip("2001:db8::")))
        #expect(try net.contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")))
        #expect(try !net.contains(ip("2001:db9::")))
        #expect(try !net.contains(ip("1.2.3.4")))
        let mappedRange = try cidr("::ffff:0:0/96")
        #expect(try mappedRange.contains(ip("1.2.3.4")))              // IPv4 addresses are v4-mapped
        #expect(try mappedRange.contains(ip("::ffff:1.2.3.4")))
        #expect(try !mappedRange.contains(ip("::1.2.3.4")))
        let all = try cidr("::/0")
        #expect(try all.contains(ip("::")) && all.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")) && all.contains(ip("10.0.0.1")))
        let host = try cidr("::1/128")
        #expect(try host.contains(ip("::1")) && !host.contains(ip("::")) && !host.contains(ip("::2")))
        // Prefixes straddling the 64-bit halves.
        let mid = try cidr("2001:db8:0:0:8000::/65")
        #expect(try mid.contains(ip("2001:db8::8000:0:0:1")) && !mid.contains(ip("2001:db8::7fff:ffff:ffff:ffff")))
        let p63 = try cidr("2001:db8:0:2::/63")
        #expect(try p63.contains(ip("2001:db8:0:3:ffff::")) && !p63.contains(ip("2001:db8:0:4::")))
        let p127 = try cidr("::2/127")
        #expect(try p127.contains(ip("::3")) && !p127.contains(ip("::4")))
        // A v4-mapped prefix written in IPv6 covers the matching IPv4 addresses.
        let v4InV6 = try cidr("::ffff:10.0.0.0/104")
        #expect(try v4InV6.contains(ip("10.200.0.1")) && !v4InV6.contains(ip("11.0.0.1")))
    }
}
