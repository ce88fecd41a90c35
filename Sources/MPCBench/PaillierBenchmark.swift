import Foundation
import MPCNode
import MPCCrypto

/// `mpcnode bench paillier`: encryptions, decryptions and homomorphic operations per second on one core.
public enum PaillierBenchmark {
    public struct Figures: Sendable {
        public var bits: Int
        public var keyGenerationSeconds: Double
        public var encryptionsPerSecond: Double
        public var fullExponentEncryptionsPerSecond: Double
        public var decryptionsPerSecond: Double
        public var additionsPerSecond: Double
        public var scalarMultiplicationsPerSecond: Double
        public var allCoresEncryptionsPerSecond: Double
        public var cores: Int
    }

    public static func run(bits: Int, samples: Int) throws -> Figures {
        var t = Date()
        let key = try PaillierPrivateKey.generate(bits: bits)
        let keyGeneration = Date().timeIntervalSince(t)
        let pk = key.publicKey
        let values = (0..<samples).map { Int64($0 * 7919 - 500_000) }
        func rate(_ body: () -> Void) -> Double {
            let start = Date()
            body()
            return Double(samples) / Date().timeIntervalSince(start)
        }
        var ciphertexts: [PaillierCiphertext] = []
        let encryptions = rate { ciphertexts = values.map { pk.encrypt($0) } }
        // The textbook randomness rⁿ mod n² (an n-bit exponent), for comparison.
        let full = rate { for v in values { _ = pk.encryptWithFullExponent(v) } }
        var decrypted: [Int64?] = []
        let decryptions = rate { decrypted = ciphertexts.map { key.decryptInt64($0) } }
        precondition(decrypted.map { $0! } == values, "Paillier round trip failed")
        let additions = rate { for i in 0..<samples { _ = pk.add(ciphertexts[i], ciphertexts[(i + 1) % samples]) } }
        let multiplications = rate { for i in 0..<samples { _ = pk.multiply(ciphertexts[i], by: Int64(i % 65_536) - 32_768) } }
        t = Date()
        let parallel = try ParallelMap.map(values + values) { pk.encrypt($0) }
        let allCores = Double(parallel.count) / Date().timeIntervalSince(t)
        return Figures(bits: bits, keyGenerationSeconds: keyGeneration, encryptionsPerSecond: encryptions,
                       fullExponentEncryptionsPerSecond: full, decryptionsPerSecond: decryptions, additionsPerSecond: additions,
                       scalarMultiplicationsPerSecond: multiplications, allCoresEncryptionsPerSecond: allCores,
                       cores: ProcessInfo.processInfo.activeProcessorCount)
    }
}
