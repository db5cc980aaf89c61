// One wallet per app process, opened with a storage key kept wrapped by the
// Android Keystore (EncryptedSharedPreferences holds it under a Keystore key).
package tessera.demo

import android.app.Application
import androidx.security.crypto.EncryptedSharedPreferences
import androidx.security.crypto.MasterKey
import android.util.Base64
import tessera.demo.logic.WalletViewModel
import uniffi.tessera.Keystore
import uniffi.tessera.KeystoreException
import uniffi.tessera.Wallet
import uniffi.tessera.WalletException
import uniffi.tessera.generateStorageKey

class AndroidKeystore(app: Application) : Keystore {
    private val prefs = EncryptedSharedPreferences.create(
        app, "tessera-keys",
        MasterKey.Builder(app).setKeyScheme(MasterKey.KeyScheme.AES256_GCM).build(),
        EncryptedSharedPreferences.PrefKeyEncryptionScheme.AES256_SIV,
        EncryptedSharedPreferences.PrefValueEncryptionScheme.AES256_GCM,
    )

    override fun storageKey(walletSalt: ByteArray): ByteArray {
        val alias = Base64.encodeToString(walletSalt, Base64.NO_WRAP)
        val stored = prefs.getString(alias, null)
            ?: prefs.getString("new", null)?.also { prefs.edit().putString(alias, it).remove("new").apply() }
            ?: throw KeystoreException.Unavailable("no storage key for this wallet")
        return Base64.decode(stored, Base64.NO_WRAP)
    }

    /** Before Wallet.create: a fresh key, adopted under the new wallet's salt on first use. */
    fun prepareNewKey() {
        prefs.edit().putString("new", Base64.encodeToString(generateStorageKey(), Base64.NO_WRAP)).apply()
    }
}

class TesseraApp : Application() {
    lateinit var model: WalletViewModel
        private set

    override fun onCreate() {
        super.onCreate()
        val keystore = AndroidKeystore(this)
        val path = filesDir.resolve("wallet.db").path
        val wallet = try {
            Wallet.open(path, keystore)
        } catch (e: WalletException.NotCreated) {
            keystore.prepareNewKey()
            Wallet.create(path, keystore)
        }
        model = WalletViewModel(wallet, BuildConfigValues.REGISTRY_URL)
    }
}

/** Where the demo's registry runs (a `tessera-registry serve` reachable from the phone). */
object BuildConfigValues {
    const val REGISTRY_URL = "http://10.0.2.2:7700" // the host machine, from the emulator
}
