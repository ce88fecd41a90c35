import Foundation
import XCTest
@testable import MPCNode

/// The holder writes each label as a JSON object itself (cheaply, per entry); a JSON parser reads back
/// exactly the values, whatever characters a CSV cell held.
final class LabelJSONTests: XCTestCase {
    func testLabelsParseBackToTheirValues() throws {
        let values = ["high", "", "say \"hi\"", "back\\slash", "line\nbreak\ttab\r", "\u{01}\u{1F}", "é 中文 🙂", "a/b", "{\"x\":1}"]
        for v in values {
            let text = LabelJSON.object([("reason", v), ("risk", "low")])
            let parsed = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String], text)
            XCTAssertEqual(parsed, ["reason": v, "risk": "low"], text)
        }
        XCTAssertEqual(LabelJSON.object([("a", "1"), ("b", "2")]), #"{"a":"1","b":"2"}"#)
    }
}
