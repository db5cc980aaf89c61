// Helpers of the JVM suite: keystores an app would write, the operator and
// gate process (tessera-ffi-testkit), a tiny assertion kit, and fixtures.
package tessera.tests

import java.io.File
import java.nio.file.Files
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.runBlocking
import uniffi.tessera.Keystore
import uniffi.tessera.KeystoreException
import uniffi.tessera.Wallet
import uniffi.tessera.generateStorageKey

/** A keystore holding one raw key, as an app would after unwrapping it with Android Keystore. */
class MemoryKeystore(private val key: ByteArray) : Keystore {
    var calls = 0
        private set
    val salts = mutableListOf<ByteArray>()

    override fun storageKey(walletSalt: ByteArray): ByteArray {
        calls++
        salts.add(walletSalt.copyOf())
        return key.copyOf()
    }
}

/** A keystore that is locked: it throws the declared exception. */
class LockedKeystore : Keystore {
    override fun storageKey(walletSalt: ByteArray): ByteArray =
        throw KeystoreException.Unavailable("user not authenticated")
}

/** A keystore with a bug: it throws something it never declared. */
class BrokenKeystore : Keystore {
    override fun storageKey(walletSalt: ByteArray): ByteArray =
        throw IllegalStateException("keystore bug 42")
}

/** The real registry the script started, and the operator/gate side in its own process. */
class Registry(val url: String, private val keyFile: String, private val testkit: String) {
    /** Creates a gate certified for [event] (zone A, 25.00 EUR) and the event itself. */
    fun setupEvent(event: String, gateDir: File): String = run("setup", url, keyFile, gateDir.path, event)

    fun forgedTicket(holder: String): ByteArray = run("forge-ticket", holder).hexToBytes()

    /**
     * One tap at the real gate engine: each command APDU it prints goes to
     * [card] (the wallet's processApdu, as an HCE service would), each
     * answer goes back. Returns the gate's `reason instrument` line.
     */
    fun gateTap(gateDir: File, card: (ByteArray) -> ByteArray): String {
        val process = ProcessBuilder(testkit, "gate-tap", url, gateDir.path).start()
        val out = process.inputStream.bufferedReader()
        val into = process.outputStream.bufferedWriter()
        var result: String? = null
        while (true) {
            val line = out.readLine() ?: break
            when {
                line.startsWith("C ") -> {
                    into.write(card(line.removePrefix("C ").hexToBytes()).toHex())
                    into.newLine()
                    into.flush()
                }
                line.startsWith("RESULT ") -> result = line.removePrefix("RESULT ")
            }
        }
        check(process.waitFor(60, TimeUnit.SECONDS)) { "gate-tap timed out" }
        val err = process.errorStream.bufferedReader().readText()
        check(process.exitValue() == 0 && result != null) { "gate-tap failed: $err" }
        return result!!
    }

    private fun run(vararg args: String): String {
        val process = ProcessBuilder(listOf(testkit) + args).start()
        val out = process.inputStream.bufferedReader().readText().trim()
        val err = process.errorStream.bufferedReader().readText().trim()
        check(process.waitFor(60, TimeUnit.SECONDS)) { "testkit ${args[0]} timed out" }
        check(process.exitValue() == 0) { "testkit ${args.joinToString(" ")} failed: $err" }
        return out
    }
}

fun String.hexToBytes(): ByteArray {
    require(length % 2 == 0) { "odd hex length" }
    return ByteArray(length / 2) { i -> substring(2 * i, 2 * i + 2).toInt(16).toByte() }
}

fun ByteArray.toHex(): String = joinToString("") { "%02x".format(it) }

class Failure(message: String) : AssertionError(message)

fun check(condition: Boolean, what: () -> String) {
    if (!condition) throw Failure(what())
}

fun <T> assertEquals(expected: T, actual: T, what: String) {
    if (expected != actual) throw Failure("$what: expected <$expected>, got <$actual>")
}

inline fun <reified E : Throwable> assertThrows(what: String, block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        throw Failure("$what: expected ${E::class.simpleName}, got $e")
    }
    throw Failure("$what: expected ${E::class.simpleName}, nothing was thrown")
}

/** Temporary wallets synced with the real registry; closed and deleted at the end. */
class Fixture(val registry: Registry) : AutoCloseable {
    val root: File = Files.createTempDirectory("tessera-kotlin").toFile()
    private val opened = mutableListOf<Wallet>()

    fun path(name: String): String = File(root, "$name.db").path

    /** A new wallet that has synced with the registry (pinned it, installed its lists). */
    fun wallet(name: String, keystore: Keystore = MemoryKeystore(generateStorageKey())): Wallet {
        val wallet = track(Wallet.create(path(name), keystore))
        runBlocking { wallet.sync(registry.url) }
        return wallet
    }

    fun track(wallet: Wallet): Wallet = wallet.also { opened.add(it) }

    override fun close() {
        opened.forEach { it.close() }
        root.deleteRecursively()
    }
}
