/// The location fields of a GeoIP2 / GeoLite2 City or Country record (and DB-IP databases that use
/// the same layout).
public struct GeoLocation: Sendable, Equatable {
    /// `country.iso_code`, else `registered_country.iso_code`.
    public var countryISO: String?
    /// `country.names.<language>`, else `registered_country.names.<language>`.
    public var countryName: String?
    /// `city.names.<language>`.
    public var city: String?
    /// `location.latitude` / `location.longitude`.
    public var latitude: Double?
    public var longitude: Double?
    /// `location.accuracy_radius`, in kilometres.
    public var accuracyRadiusKm: Int?
    /// `continent.code` (e.g. "EU").
    public var continent: String?

    public init(countryISO: String? = nil, countryName: String? = nil, city: String? = nil,
                latitude: Double? = nil, longitude: Double? = nil, accuracyRadiusKm: Int? = nil,
                continent: String? = nil) {
        self.countryISO = countryISO
        self.countryName = countryName
        self.city = city
        self.latitude = latitude
        self.longitude = longitude
        self.accuracyRadiusKm = accuracyRadiusKm
        self.continent = continent
    }

    /// Reads the fields from a decoded record; fields that are missing or of the wrong type are nil.
    public init(record: MMDBValue, language: String = "en") {
        let country = record["country"], registered = record["registered_country"]
        countryISO = country?["iso_code"]?.string ?? registered?["iso_code"]?.string
        countryName = country?["names"]?[language]?.string ?? registered?["names"]?[language]?.string
        city = record["city"]?["names"]?[language]?.string
        let location = record["location"]
        latitude = location?["latitude"]?.double
        longitude = location?["longitude"]?.double
        accuracyRadiusKm = location?["accuracy_radius"]?.int
        continent = record["continent"]?["code"]?.string
    }
}

extension MaxMindDB {
    /// The location of `ip` from a City or Country database, nil when the address is not in it.
    ///
    /// Reads only the fields it needs (as `lookup(_:path:)` does): the rest of the record is
    /// skipped, not decoded, so this is several times faster than `lookup` followed by
    /// `GeoLocation(record:)`, which gives the same result for a well-formed record.
    public func location(_ ip: IPAddress, language: String = "en") throws(GeoIPError) -> GeoLocation? {
        guard let offset = try find(ip).offset else { return nil }
        return try withDataDecoder { (d) throws(GeoIPError) -> GeoLocation in
            try d.location(record: d.start + offset, language: language)
        }
    }
}

extension MMDBDecoder {
    mutating func location(record root: Int, language: String) throws(GeoIPError) -> GeoLocation {
        // One pass over the record's top-level map, noting where the interesting members are.
        var country: Int?, registered: Int?, city: Int?, location: Int?, continent: Int?
        let (at, h) = try target(of: root)
        guard h.type == 7 else { return GeoLocation() }
        guard h.size <= (end - h.payload) / 2 else {
            throw fail("map at byte \(at) declares \(h.size) entries but only \(end - h.payload) bytes remain in the \(section)", at: at)
        }
        var q = h.payload
        for _ in 0..<h.size {
            let k = try keyBytes(at: &q)
            switch k.count {
            case 4 where keyEquals(k, "city"): city = q
            case 7 where keyEquals(k, "country"): country = q
            case 8 where keyEquals(k, "location"): location = q
            case 9 where keyEquals(k, "continent"): continent = q
            case 18 where keyEquals(k, "registered_country"): registered = q
            default: break
            }
            try skip(at: &q, depth: 1)
        }
        var loc = GeoLocation()
        loc.countryISO = try string(at: country, "iso_code")
        if loc.countryISO == nil { loc.countryISO = try string(at: registered, "iso_code") }
        loc.countryName = try name(at: country, language)
        if loc.countryName == nil { loc.countryName = try name(at: registered, language) }
        loc.city = try name(at: city, language)
        if let location {
            loc.latitude = try leaf(at: location, "latitude")?.double
            loc.longitude = try leaf(at: location, "longitude")?.double
            loc.accuracyRadiusKm = try leaf(at: location, "accuracy_radius")?.int
        }
        loc.continent = try string(at: continent, "code")
        return loc
    }

    func keyEquals(_ k: Range<Int>, _ key: StaticString) -> Bool {
        memEqual(k.lowerBound, UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
    }

    /// The value for `key` in the map at `pos` (nil if `pos` is nil, not a map, or lacks the key).
    /// Containers are not decoded: a leaf is a scalar.
    mutating func leaf(at pos: Int?, _ key: StaticString) throws(GeoIPError) -> MMDBValue? {
        guard let pos, let v = try member(key, ofMapAt: pos) else { return nil }
        let (_, h) = try target(of: v)
        guard h.type != 7, h.type != 11 else { return nil }
        return try value(at: v)
    }

    mutating func string(at pos: Int?, _ key: StaticString) throws(GeoIPError) -> String? {
        try leaf(at: pos, key)?.string
    }

    /// `names.<language>` of the map at `pos`.
    mutating func name(at pos: Int?, _ language: String) throws(GeoIPError) -> String? {
        guard let pos, let names = try member("names", ofMapAt: pos), let n = try member(language, ofMapAt: names) else { return nil }
        let (_, h) = try target(of: n)
        guard h.type == 2 else { return nil }
        return try value(at: n).string
    }
}
