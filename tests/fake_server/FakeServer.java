/*
 * A fake Minecraft Java server for the mcdash tests. Java 17, JDK only, no package.
 *
 * Run it like the real one: `java -Xmx512M -Xms512M -jar server.jar nogui` in the
 * server directory. It prints vanilla-shaped console lines (`[HH:mm:ss] [thread/LEVEL]: msg`)
 * to stdout and to logs/latest.log, honours eula.txt and server.properties, answers the
 * Server List Ping on the game port, and implements the console commands the dashboard
 * uses with the exact vanilla reply texts.
 *
 * Environment:
 *   FAKE_MC_VERSION         version name (default 1.21)
 *   FAKE_MC_PROTOCOL        protocol number in the status reply (default 767)
 *   FAKE_MC_STARTUP_MS      simulated world loading time (default 300)
 *   FAKE_MC_AUTOSAVE_MS     autosave period, 0 = off (default 0)
 *   FAKE_MC_DIRTY_WRITE_MS  period of the non-atomic "chunk writer" on r.0.0.mca, 0 = off
 *   FAKE_MC_REGION_FILES    number of region files world/region/r.<i>.0.mca (default 2)
 *   FAKE_MC_REGION_BYTES    size of every region file (default 4096)
 *   FAKE_MC_PRINT_ARGS      1 = print `Max memory: <n> MiB` and the JVM/program arguments
 *   FAKE_MC_REPORT_PROPERTIES  1 = write every key java.util.Properties read from
 *                           server.properties to .fake/properties-read.json (a JSON object)
 *
 * World format (so tests can check a backup is consistent):
 *   world/level.dat            "generation=<G>\n"
 *   world/region/r.<i>.0.mca   clean: ("generation=<G>\n" + repeat("r.<i>.0@<G>;")) cut to size
 *                              dirty (chunk writer, only r.0.0.mca):
 *                              ("generation=<G>\ndirty=<k>\n" + repeat("dirty<k>;")) cut to size
 *
 * Test-only console commands: fake:join NAME, fake:leave NAME, fake:chat NAME MESSAGE,
 * fake:crash, fake:ignore-stop, fake:exit N, fake:say-lines N.
 */

import java.io.BufferedInputStream;
import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.Reader;
import java.io.Writer;
import java.lang.management.ManagementFactory;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.GZIPOutputStream;

public final class FakeServer {
    static final Path CWD = Paths.get("").toAbsolutePath();
    static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("HH:mm:ss");
    static final Pattern PLAYER_NAME = Pattern.compile("[A-Za-z0-9_]{3,16}");
    static final String MAIN = "Server thread";

    // ---- output -------------------------------------------------------------------------
    static PrintStream out;
    static Writer logWriter;
    static final Object LOG_LOCK = new Object();

    // ---- settings -----------------------------------------------------------------------
    static String version;
    static int protocol;
    static long startNanos;
    static long startupMs, autosaveMs, dirtyMs;
    static int regionFiles, regionBytes;
    static int port = 25565;
    static String serverIp = "";
    static int maxPlayers = 20;
    static String motd = "A Minecraft Server";
    static volatile boolean whiteList;
    static boolean onlineMode = true;
    static boolean enableStatus = true;
    static int opLevel = 4;

    // ---- state --------------------------------------------------------------------------
    static final Object WORLD_LOCK = new Object();
    static long generation; // guarded by WORLD_LOCK
    static long dirtyCount; // guarded by WORLD_LOCK
    static volatile boolean savingEnabled = true; // written under WORLD_LOCK
    static final AtomicBoolean stopping = new AtomicBoolean();
    static volatile boolean ignoreStop;
    static ServerSocket serverSocket;
    static final CountDownLatch ready = new CountDownLatch(1);
    static final AtomicInteger entityIds = new AtomicInteger(87);
    static final AtomicInteger authenticators = new AtomicInteger();

    record Player(String name, String uuid, int port) {}
    record Op(String uuid, String name, int level, boolean bypassesPlayerLimit) {}
    record Profile(String uuid, String name) {}

    static final Map<String, Player> online = new LinkedHashMap<>(); // guarded by itself
    static final Map<String, Op> ops = new LinkedHashMap<>(); // guarded by LISTS
    static final Map<String, Profile> whitelist = new LinkedHashMap<>(); // guarded by LISTS
    static final Object LISTS = new Object();

    public static void main(String[] args) throws Exception {
        startNanos = System.nanoTime();
        out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        System.setOut(out);

        boolean initSettings = false;
        Integer portOverride = null;
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--initSettings")) {
                initSettings = true;
            } else if (args[i].equals("--port") && i + 1 < args.length) {
                portOverride = Integer.parseInt(args[++i]);
            }
        }

        version = env("FAKE_MC_VERSION", "1.21");
        protocol = (int) envLong("FAKE_MC_PROTOCOL", 767);
        startupMs = envLong("FAKE_MC_STARTUP_MS", 300);
        autosaveMs = envLong("FAKE_MC_AUTOSAVE_MS", 0);
        dirtyMs = envLong("FAKE_MC_DIRTY_WRITE_MS", 0);
        regionFiles = (int) envLong("FAKE_MC_REGION_FILES", 2);
        regionBytes = (int) envLong("FAKE_MC_REGION_BYTES", 4096);

        openLog();
        loadProperties();
        if (portOverride != null) {
            port = portOverride;
        }

        if (initSettings) {
            if (!Files.exists(CWD.resolve("eula.txt"))) {
                writeDefaultEula();
            }
            log("ServerMain", "INFO", "Initialized 'server.properties' and 'eula.txt'");
            System.exit(0);
        }

        log(MAIN, "INFO", "Starting minecraft server version " + version);
        if ("1".equals(System.getenv("FAKE_MC_PRINT_ARGS"))) {
            log(MAIN, "INFO", "Max memory: " + (Runtime.getRuntime().maxMemory() / (1024 * 1024)) + " MiB");
            log(MAIN, "INFO", "JVM arguments: " + String.join(" ", ManagementFactory.getRuntimeMXBean().getInputArguments()));
            log(MAIN, "INFO", "Program arguments: " + String.join(" ", args));
        }

        if (!eulaAccepted()) {
            log("ServerMain", "INFO", "You need to agree to the EULA in order to run the server. Go to eula.txt for more info.");
            System.exit(0);
        }

        log(MAIN, "INFO", "Loading properties");
        log(MAIN, "INFO", "Default game type: SURVIVAL");
        log(MAIN, "INFO", "Generating keypair");
        log(MAIN, "INFO", "Starting Minecraft server on " + (serverIp.isEmpty() ? "*" : serverIp) + ":" + port);
        try {
            ServerSocket socket = new ServerSocket();
            // Linux JDK/netty listeners set SO_REUSEADDR (so a restart is not blocked by
            // TIME_WAIT connections); a port another process listens on still fails to bind.
            socket.setReuseAddress(true);
            InetAddress address = serverIp.isEmpty() ? null : InetAddress.getByName(serverIp);
            socket.bind(new InetSocketAddress(address, port), 50);
            serverSocket = socket;
        } catch (IOException e) {
            log(MAIN, "WARN", "**** FAILED TO BIND TO PORT!");
            String exc = e instanceof BindException
                ? "java.net.BindException: Address already in use"
                : e.toString();
            log(MAIN, "WARN", "The exception was: " + exc);
            log(MAIN, "WARN", "Perhaps a server is already running on that port?");
            System.exit(1);
        }
        Runtime.getRuntime().addShutdownHook(new Thread(FakeServer::onShutdownSignal, "Server Shutdown Thread"));
        startListener();

        if (!onlineMode) {
            log(MAIN, "WARN", "**** SERVER IS RUNNING IN OFFLINE/INSECURE MODE!");
            log(MAIN, "WARN", "The server will make no attempt to authenticate usernames. Beware.");
            log(MAIN, "WARN", "While this makes the game possible to play without internet access, it also opens up the ability for hackers to connect with any username they choose.");
            log(MAIN, "WARN", "To change this, set \"online-mode\" to \"true\" in the server.properties file.");
        }
        loadLists();
        for (String name : List.of("banned-players.json", "banned-ips.json", "usercache.json")) {
            Path p = CWD.resolve(name);
            if (!Files.exists(p)) {
                writeAtomic(p, "[]".getBytes(StandardCharsets.UTF_8));
            }
        }

        log(MAIN, "INFO", "Preparing level \"world\"");
        ensureWorld();
        log(MAIN, "INFO", "Preparing start region for dimension minecraft:overworld");
        if (startupMs > 0) {
            Thread.sleep(startupMs);
        }
        log(MAIN, "INFO", "Time elapsed: " + Math.max(startupMs, 1) + " ms");
        double seconds = (System.nanoTime() - startNanos) / 1e9;
        log(MAIN, "INFO", String.format(Locale.ROOT, "Done (%.3fs)! For help, type \"help\"", seconds));
        ready.countDown();

        if (autosaveMs > 0) {
            daemon("Autosave", () -> periodic(autosaveMs, FakeServer::autosave));
        }
        if (dirtyMs > 0) {
            daemon("Chunk Writer", () -> periodic(dirtyMs, FakeServer::dirtyWrite));
        }

        BufferedReader reader = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = reader.readLine()) != null) {
            try {
                handle(line);
            } catch (Exception e) {
                log(MAIN, "ERROR", "Command exception: " + line);
                raw(e.toString());
            }
        }
        // stdin closed: a real server keeps running until it is stopped or signalled.
        while (true) {
            Thread.sleep(Long.MAX_VALUE);
        }
    }

    // ---- logging ------------------------------------------------------------------------

    static void openLog() throws IOException {
        Path logs = CWD.resolve("logs");
        Files.createDirectories(logs);
        Path latest = logs.resolve("latest.log");
        if (Files.exists(latest)) {
            // Like vanilla: archive the previous run's log as <date>-<n>.log.gz.
            String date = LocalDate.ofInstant(Files.getLastModifiedTime(latest).toInstant(), ZoneId.systemDefault()).toString();
            int n = 1;
            Path target;
            while (Files.exists(target = logs.resolve(date + "-" + n + ".log.gz"))) {
                n++;
            }
            try (InputStream in = Files.newInputStream(latest);
                 OutputStream gz = new GZIPOutputStream(Files.newOutputStream(target))) {
                in.transferTo(gz);
            }
            Files.delete(latest);
        }
        logWriter = Files.newBufferedWriter(latest, StandardCharsets.UTF_8,
            StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    // -Dfake.logStyle=neoforge (set by the stand-in installer's unix_args.txt): the log4j
    // pattern of Forge and NeoForge, [01Dec2026 16:39:44.123] [Server thread/INFO] [logger/]: m
    static final boolean FORGE_STYLE = "neoforge".equals(System.getProperty("fake.logStyle"));
    static final DateTimeFormatter FORGE_TIME =
        DateTimeFormatter.ofPattern("ddMMMyyyy HH:mm:ss.SSS", Locale.ROOT);

    static void log(String thread, String level, String message) {
        if (FORGE_STYLE) {
            raw("[" + LocalDateTime.now().format(FORGE_TIME) + "] [" + thread + "/" + level
                + "] [net.minecraft.server.dedicated.DedicatedServer/]: " + message);
            return;
        }
        raw("[" + LocalTime.now().format(TIME) + "] [" + thread + "/" + level + "]: " + message);
    }

    static void info(String message) {
        log(MAIN, "INFO", message);
    }

    static void raw(String line) {
        synchronized (LOG_LOCK) {
            try { // the file first: whoever sees a line on stdout finds it in latest.log too
                logWriter.write(line);
                logWriter.write('\n');
                logWriter.flush();
            } catch (IOException ignored) {
                // the log file is best effort, stdout is what the dashboard reads
            }
            out.println(line);
        }
    }

    // ---- settings files -----------------------------------------------------------------

    static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? fallback : value;
    }

    static long envLong(String name, long fallback) {
        try {
            return Long.parseLong(env(name, Long.toString(fallback)).trim());
        } catch (NumberFormatException e) {
            return fallback;
        }
    }

    static int intProp(Properties p, String key, int fallback) {
        try {
            return Integer.parseInt(p.getProperty(key, Integer.toString(fallback)).trim());
        } catch (NumberFormatException e) {
            return fallback;
        }
    }

    static void loadProperties() throws IOException {
        Path path = CWD.resolve("server.properties");
        Properties p = new Properties();
        if (Files.exists(path)) {
            try (Reader r = Files.newBufferedReader(path, StandardCharsets.UTF_8)) {
                p.load(r);
            }
        } else {
            writeAtomic(path, defaultProperties().getBytes(StandardCharsets.UTF_8));
        }
        port = intProp(p, "server-port", 25565);
        maxPlayers = intProp(p, "max-players", 20);
        motd = p.getProperty("motd", "A Minecraft Server");
        serverIp = p.getProperty("server-ip", "").trim();
        whiteList = Boolean.parseBoolean(p.getProperty("white-list", "false").trim());
        onlineMode = Boolean.parseBoolean(p.getProperty("online-mode", "true").trim());
        enableStatus = Boolean.parseBoolean(p.getProperty("enable-status", "true").trim());
        opLevel = intProp(p, "op-permission-level", 4);
        if ("1".equals(System.getenv("FAKE_MC_REPORT_PROPERTIES"))) {
            reportProperties(p);
        }
    }

    /** What Java itself read, for tests of the dashboard's server.properties merge. */
    static void reportProperties(Properties p) throws IOException {
        StringBuilder sb = new StringBuilder("{");
        for (String key : new java.util.TreeSet<>(p.stringPropertyNames())) {
            sb.append(sb.length() > 1 ? "," : "").append(quote(key)).append(':').append(quote(p.getProperty(key)));
        }
        Path report = CWD.resolve(".fake").resolve("properties-read.json");
        writeAtomic(report, sb.append('}').toString().getBytes(StandardCharsets.UTF_8));
    }

    static String headerDate() {
        return ZonedDateTime.now().format(DateTimeFormatter.ofPattern("EEE MMM dd HH:mm:ss zzz yyyy", Locale.ROOT));
    }

    static String defaultProperties() {
        String[] lines = {
            "accepts-transfers=false", "allow-flight=false", "allow-nether=true",
            "broadcast-console-to-ops=true", "broadcast-rcon-to-ops=true", "bug-report-link=",
            "difficulty=easy", "enable-command-block=false", "enable-jmx-monitoring=false",
            "enable-query=false", "enable-rcon=false", "enable-status=true",
            "enforce-secure-profile=true", "enforce-whitelist=false",
            "entity-broadcast-range-percentage=100", "force-gamemode=false",
            "function-permission-level=2", "gamemode=survival", "generate-structures=true",
            "generator-settings={}", "hardcore=false", "hide-online-players=false",
            "initial-disabled-packs=", "initial-enabled-packs=vanilla", "level-name=world",
            "level-seed=", "level-type=minecraft\\:normal", "log-ips=true",
            "max-chained-neighbor-updates=1000000", "max-players=20", "max-tick-time=60000",
            "max-world-size=29999984", "motd=A Minecraft Server",
            "network-compression-threshold=256", "online-mode=true", "op-permission-level=4",
            "player-idle-timeout=0", "prevent-proxy-connections=false", "pvp=true",
            "query.port=25565", "rate-limit=0", "rcon.password=", "rcon.port=25575",
            "region-file-compression=deflate", "require-resource-pack=false", "resource-pack=",
            "resource-pack-id=", "resource-pack-prompt=", "resource-pack-sha1=", "server-ip=",
            "server-port=25565", "simulation-distance=10", "spawn-chunk-radius=2",
            "spawn-monsters=true", "spawn-protection=16", "sync-chunk-writes=true",
            "text-filtering-config=", "use-native-transport=true", "view-distance=10",
            "white-list=false",
        };
        return "#Minecraft server properties\n#" + headerDate() + "\n" + String.join("\n", lines) + "\n";
    }

    static void writeDefaultEula() throws IOException {
        String text = "#By changing the setting below to TRUE you are indicating your agreement to our EULA (https://aka.ms/MinecraftEULA).\n"
            + "#" + headerDate() + "\neula=false\n";
        writeAtomic(CWD.resolve("eula.txt"), text.getBytes(StandardCharsets.UTF_8));
    }

    static boolean eulaAccepted() throws IOException {
        Path path = CWD.resolve("eula.txt");
        if (!Files.exists(path)) {
            log("ServerMain", "WARN", "Failed to load eula.txt");
            writeDefaultEula();
            return false;
        }
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(path, StandardCharsets.UTF_8)) {
            p.load(r);
        } catch (IOException | IllegalArgumentException e) {
            log("ServerMain", "WARN", "Failed to load eula.txt");
            return false;
        }
        return Boolean.parseBoolean(p.getProperty("eula", "false").trim());
    }

    /** Sets one key of server.properties in place, keeping every other line as it is. */
    static void setProperty(String key, String value) throws IOException {
        Path path = CWD.resolve("server.properties");
        String text = Files.exists(path) ? Files.readString(path, StandardCharsets.UTF_8) : "";
        String eol = text.contains("\r\n") ? "\r\n" : "\n";
        List<String> lines = new ArrayList<>(List.of(text.split("\r?\n", -1)));
        if (!lines.isEmpty() && lines.get(lines.size() - 1).isEmpty()) {
            lines.remove(lines.size() - 1);
        }
        boolean found = false;
        for (int i = 0; i < lines.size(); i++) {
            String t = lines.get(i).stripLeading();
            if (t.isEmpty() || t.startsWith("#") || t.startsWith("!")) {
                continue;
            }
            if (propertyKey(t).equals(key)) {
                lines.set(i, key + "=" + value);
                found = true;
            }
        }
        if (!found) {
            lines.add(key + "=" + value);
        }
        writeAtomic(path, (String.join(eol, lines) + eol).getBytes(StandardCharsets.UTF_8));
    }

    static String propertyKey(String line) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (c == '\\' && i + 1 < line.length()) {
                sb.append(line.charAt(++i));
            } else if (c == '=' || c == ':' || Character.isWhitespace(c)) {
                break;
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }

    static void writeAtomic(Path path, byte[] data) throws IOException {
        Path parent = path.getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        Path tmp = path.resolveSibling(path.getFileName() + ".tmp");
        Files.write(tmp, data);
        Files.move(tmp, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    // ---- ops.json / whitelist.json ------------------------------------------------------

    static String offlineUuid(String name) {
        return UUID.nameUUIDFromBytes(("OfflinePlayer:" + name).getBytes(StandardCharsets.UTF_8)).toString();
    }

    static final Pattern OBJECT = Pattern.compile("\\{[^{}]*\\}");

    static String jsonString(String object, String key) {
        Matcher m = Pattern.compile("\"" + Pattern.quote(key) + "\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"").matcher(object);
        return m.find() ? unescape(m.group(1)) : null;
    }

    static String jsonLiteral(String object, String key) {
        Matcher m = Pattern.compile("\"" + Pattern.quote(key) + "\"\\s*:\\s*([-0-9a-z.]+)").matcher(object);
        return m.find() ? m.group(1) : null;
    }

    static String unescape(String s) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c != '\\' || i + 1 >= s.length()) {
                sb.append(c);
                continue;
            }
            char e = s.charAt(++i);
            switch (e) {
                case 'n' -> sb.append('\n');
                case 't' -> sb.append('\t');
                case 'r' -> sb.append('\r');
                case 'b' -> sb.append('\b');
                case 'f' -> sb.append('\f');
                case 'u' -> {
                    if (i + 4 < s.length()) {
                        sb.append((char) Integer.parseInt(s.substring(i + 1, i + 5), 16));
                        i += 4;
                    }
                }
                default -> sb.append(e);
            }
        }
        return sb.toString();
    }

    static String quote(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        return sb.append('"').toString();
    }

    static List<String> readObjects(Path path) {
        List<String> objects = new ArrayList<>();
        try {
            if (Files.exists(path)) {
                Matcher m = OBJECT.matcher(Files.readString(path, StandardCharsets.UTF_8));
                while (m.find()) {
                    objects.add(m.group());
                }
            }
        } catch (IOException e) {
            log(MAIN, "WARN", "Failed to load " + path.getFileName() + ": " + e);
        }
        return objects;
    }

    static void loadLists() {
        synchronized (LISTS) {
            ops.clear();
            for (String o : readObjects(CWD.resolve("ops.json"))) {
                String name = jsonString(o, "name");
                if (name == null) {
                    continue;
                }
                String uuid = jsonString(o, "uuid");
                String level = jsonLiteral(o, "level");
                String bypass = jsonLiteral(o, "bypassesPlayerLimit");
                int lvl;
                try {
                    lvl = level == null ? opLevel : Integer.parseInt(level);
                } catch (NumberFormatException e) {
                    lvl = opLevel;
                }
                ops.put(name.toLowerCase(Locale.ROOT), new Op(uuid == null ? offlineUuid(name) : uuid, name, lvl, "true".equals(bypass)));
            }
            whitelist.clear();
            for (String o : readObjects(CWD.resolve("whitelist.json"))) {
                String name = jsonString(o, "name");
                if (name == null) {
                    continue;
                }
                String uuid = jsonString(o, "uuid");
                whitelist.put(name.toLowerCase(Locale.ROOT), new Profile(uuid == null ? offlineUuid(name) : uuid, name));
            }
            try {
                if (!Files.exists(CWD.resolve("ops.json"))) {
                    saveOps();
                }
                if (!Files.exists(CWD.resolve("whitelist.json"))) {
                    saveWhitelist();
                }
            } catch (IOException e) {
                log(MAIN, "WARN", "Failed to save lists: " + e);
            }
        }
    }

    static void saveOps() throws IOException {
        StringBuilder sb = new StringBuilder("[");
        int i = 0;
        for (Op op : ops.values()) {
            sb.append(i++ == 0 ? "\n" : ",\n");
            sb.append("  {\n")
                .append("    \"uuid\": ").append(quote(op.uuid())).append(",\n")
                .append("    \"name\": ").append(quote(op.name())).append(",\n")
                .append("    \"level\": ").append(op.level()).append(",\n")
                .append("    \"bypassesPlayerLimit\": ").append(op.bypassesPlayerLimit()).append("\n")
                .append("  }");
        }
        sb.append(i == 0 ? "]" : "\n]");
        writeAtomic(CWD.resolve("ops.json"), sb.toString().getBytes(StandardCharsets.UTF_8));
    }

    static void saveWhitelist() throws IOException {
        StringBuilder sb = new StringBuilder("[");
        int i = 0;
        for (Profile p : whitelist.values()) {
            sb.append(i++ == 0 ? "\n" : ",\n");
            sb.append("  {\n")
                .append("    \"uuid\": ").append(quote(p.uuid())).append(",\n")
                .append("    \"name\": ").append(quote(p.name())).append("\n")
                .append("  }");
        }
        sb.append(i == 0 ? "]" : "\n]");
        writeAtomic(CWD.resolve("whitelist.json"), sb.toString().getBytes(StandardCharsets.UTF_8));
    }

    // ---- world --------------------------------------------------------------------------

    static Path world() {
        return CWD.resolve("world");
    }

    static Path region(int index) {
        return world().resolve("region").resolve("r." + index + ".0.mca");
    }

    static byte[] fill(String header, String unit, int size) {
        StringBuilder sb = new StringBuilder(header);
        while (sb.length() < size) {
            sb.append(unit);
        }
        byte[] all = sb.toString().getBytes(StandardCharsets.US_ASCII);
        byte[] result = new byte[Math.max(size, 0)];
        System.arraycopy(all, 0, result, 0, result.length);
        return result;
    }

    static byte[] regionContent(int index, long g) {
        return fill("generation=" + g + "\n", "r." + index + ".0@" + g + ";", regionBytes);
    }

    static byte[] levelDat(long g) {
        return ("generation=" + g + "\n").getBytes(StandardCharsets.US_ASCII);
    }

    static void ensureWorld() throws IOException {
        synchronized (WORLD_LOCK) {
            Path level = world().resolve("level.dat");
            if (Files.exists(level)) {
                Matcher m = Pattern.compile("generation=(\\d+)").matcher(Files.readString(level, StandardCharsets.ISO_8859_1));
                if (m.find()) {
                    generation = Long.parseLong(m.group(1));
                }
            } else {
                writeAtomic(level, levelDat(generation));
            }
            for (int i = 0; i < regionFiles; i++) {
                if (!Files.exists(region(i))) {
                    writeAtomic(region(i), regionContent(i, generation));
                }
            }
        }
    }

    /** A full save: next generation, level.dat and every region file, each atomically. */
    static void saveWorld() throws IOException {
        synchronized (WORLD_LOCK) {
            generation++;
            for (int i = 0; i < regionFiles; i++) {
                writeAtomic(region(i), regionContent(i, generation));
            }
            writeAtomic(world().resolve("level.dat"), levelDat(generation));
        }
    }

    static void autosave() throws IOException {
        synchronized (WORLD_LOCK) {
            if (savingEnabled && !stopping.get()) {
                saveWorld();
            }
        }
    }

    /** Rewrites r.0.0.mca in place, not atomically: truncate, half, pause, other half. */
    static void dirtyWrite() throws Exception {
        synchronized (WORLD_LOCK) {
            if (!savingEnabled || stopping.get()) {
                return;
            }
            dirtyCount++;
            byte[] data = fill("generation=" + generation + "\ndirty=" + dirtyCount + "\n", "dirty" + dirtyCount + ";", regionBytes);
            Files.createDirectories(region(0).getParent());
            try (FileOutputStream fos = new FileOutputStream(region(0).toFile(), false)) {
                int half = data.length / 2;
                fos.write(data, 0, half);
                fos.flush();
                Thread.sleep(Math.max(1, Math.min(20, dirtyMs / 4)));
                fos.write(data, half, data.length - half);
            }
        }
    }

    interface Task {
        void run() throws Exception;
    }

    static void periodic(long ms, Task task) {
        while (true) {
            try {
                Thread.sleep(ms);
                task.run();
            } catch (InterruptedException e) {
                return;
            } catch (Exception e) {
                log(MAIN, "WARN", "Background task failed: " + e);
            }
        }
    }

    static void daemon(String name, Runnable body) {
        Thread t = new Thread(body, name);
        t.setDaemon(true);
        t.start();
    }

    // ---- Server List Ping ---------------------------------------------------------------

    static void startListener() {
        daemon("Server Listener", () -> {
            while (!serverSocket.isClosed()) {
                try {
                    Socket client = serverSocket.accept();
                    daemon("Netty Server IO", () -> serve(client));
                } catch (IOException e) {
                    if (serverSocket.isClosed()) {
                        return;
                    }
                }
            }
        });
    }

    static int readVarInt(InputStream in) throws IOException {
        int value = 0;
        for (int i = 0; i < 5; i++) {
            int b = in.read();
            if (b < 0) {
                throw new EOFException();
            }
            value |= (b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0) {
                return value;
            }
        }
        throw new IOException("VarInt too big");
    }

    static void writeVarInt(ByteArrayOutputStream out, int value) {
        while ((value & ~0x7F) != 0) {
            out.write((value & 0x7F) | 0x80);
            value >>>= 7;
        }
        out.write(value);
    }

    static String readString(DataInputStream in) throws IOException {
        int len = readVarInt(in);
        if (len < 0 || len > 32767 * 4) {
            throw new IOException("bad string length");
        }
        return new String(in.readNBytes(len), StandardCharsets.UTF_8);
    }

    static void sendPacket(OutputStream out, int id, byte[] payload) throws IOException {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        writeVarInt(body, id);
        body.write(payload);
        ByteArrayOutputStream frame = new ByteArrayOutputStream();
        writeVarInt(frame, body.size());
        body.writeTo(frame);
        out.write(frame.toByteArray());
        out.flush();
    }

    static byte[] readPacket(DataInputStream in) throws IOException {
        int len = readVarInt(in);
        if (len < 0 || len > 1 << 21) {
            throw new IOException("bad packet length");
        }
        byte[] data = in.readNBytes(len);
        if (data.length < len) {
            throw new EOFException();
        }
        return data;
    }

    static void serve(Socket socket) {
        try (socket) {
            socket.setSoTimeout(30_000);
            socket.setTcpNoDelay(true);
            DataInputStream in = new DataInputStream(new BufferedInputStream(socket.getInputStream()));
            OutputStream os = socket.getOutputStream();
            in.mark(1);
            int first = in.read();
            if (first < 0 || first == 0xFE) {
                return; // closed, or a legacy (pre-1.7) ping: just close
            }
            in.reset();
            DataInputStream handshake = new DataInputStream(new ByteArrayInputStream(readPacket(in)));
            if (readVarInt(handshake) != 0x00) {
                return;
            }
            readVarInt(handshake); // protocol
            readString(handshake); // host
            handshake.readUnsignedShort(); // port
            int next = readVarInt(handshake);
            if (next != 1) {
                return; // login / transfer: not supported, just close
            }
            while (true) {
                DataInputStream packet = new DataInputStream(new ByteArrayInputStream(readPacket(in)));
                int id = readVarInt(packet);
                if (id == 0x00) {
                    if (!enableStatus) {
                        return;
                    }
                    if (!ready.await(60, TimeUnit.SECONDS)) {
                        return;
                    }
                    byte[] json = statusJson().getBytes(StandardCharsets.UTF_8);
                    ByteArrayOutputStream payload = new ByteArrayOutputStream();
                    writeVarInt(payload, json.length);
                    payload.write(json);
                    sendPacket(os, 0x00, payload.toByteArray());
                } else if (id == 0x01) {
                    sendPacket(os, 0x01, packet.readNBytes(8));
                    return;
                } else {
                    return;
                }
            }
        } catch (Exception ignored) {
            // clients may disconnect at any point
        }
    }

    static String statusJson() {
        List<Player> players;
        synchronized (online) {
            players = new ArrayList<>(online.values());
        }
        StringBuilder sb = new StringBuilder();
        sb.append("{\"version\":{\"name\":").append(quote(version)).append(",\"protocol\":").append(protocol).append("}");
        sb.append(",\"players\":{\"max\":").append(maxPlayers).append(",\"online\":").append(players.size());
        if (!players.isEmpty()) {
            sb.append(",\"sample\":[");
            for (int i = 0; i < players.size() && i < 12; i++) {
                Player p = players.get(i);
                sb.append(i == 0 ? "" : ",").append("{\"name\":").append(quote(p.name())).append(",\"id\":").append(quote(p.uuid())).append("}");
            }
            sb.append("]");
        }
        sb.append("}");
        sb.append(",\"description\":{\"text\":").append(quote(motd)).append("}");
        Path icon = CWD.resolve("server-icon.png");
        if (Files.isRegularFile(icon)) {
            try {
                sb.append(",\"favicon\":").append(quote("data:image/png;base64," + Base64.getEncoder().encodeToString(Files.readAllBytes(icon))));
            } catch (IOException ignored) {
                // no favicon then
            }
        }
        sb.append(",\"enforcesSecureChat\":false}");
        return sb.toString();
    }

    // ---- commands -----------------------------------------------------------------------

    static void unknown(String command) {
        info("Unknown or incomplete command, see below for error");
        info(command + "<--[HERE]");
    }

    static boolean validName(String name) {
        if (!PLAYER_NAME.matcher(name).matches()) {
            info("That player does not exist");
            return false;
        }
        return true;
    }

    static void recordSaveCommand(String command) {
        try {
            Path file = CWD.resolve(".fake").resolve("save-commands.log");
            Files.createDirectories(file.getParent());
            Files.writeString(file, System.currentTimeMillis() + " " + command + "\n", StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            log(MAIN, "WARN", "Could not record save command: " + e);
        }
    }

    static void handle(String line) throws Exception {
        String command = line.strip();
        if (command.startsWith("/")) {
            command = command.substring(1);
        }
        if (command.isEmpty()) {
            return;
        }
        int space = command.indexOf(' ');
        String head = space < 0 ? command : command.substring(0, space);
        String rest = space < 0 ? "" : command.substring(space + 1).strip();
        switch (head) {
            case "list" -> listCommand(command, rest);
            case "op" -> opCommand(command, rest, true);
            case "deop" -> opCommand(command, rest, false);
            case "whitelist" -> whitelistCommand(command, rest);
            case "save-all" -> {
                if (!rest.isEmpty() && !rest.equals("flush")) {
                    unknown(command);
                    return;
                }
                recordSaveCommand(command);
                info("Saving the game (this may take a moment!)");
                saveWorld();
                info("Saved the game");
            }
            case "save-off" -> {
                if (!rest.isEmpty()) {
                    unknown(command);
                    return;
                }
                recordSaveCommand(command);
                boolean changed;
                synchronized (WORLD_LOCK) { // waits for an in-flight chunk write
                    changed = savingEnabled;
                    savingEnabled = false;
                }
                info(changed ? "Automatic saving is now disabled" : "Saving is already turned off");
            }
            case "save-on" -> {
                if (!rest.isEmpty()) {
                    unknown(command);
                    return;
                }
                recordSaveCommand(command);
                boolean changed;
                synchronized (WORLD_LOCK) {
                    changed = !savingEnabled;
                    savingEnabled = true;
                }
                info(changed ? "Automatic saving is now enabled" : "Saving is already turned on");
            }
            case "say" -> {
                if (rest.isEmpty()) {
                    unknown(command);
                    return;
                }
                info("[Server] " + rest);
            }
            case "kick" -> kickCommand(command, rest);
            case "help" -> {
                for (String usage : List.of("/help [<command>]", "/list [uuids]", "/op <targets>", "/deop <targets>",
                        "/kick <targets> [<reason>]", "/save-all [flush]", "/save-off", "/save-on", "/say <message>",
                        "/stop", "/whitelist (add|list|off|on|reload|remove)")) {
                    info(usage);
                }
            }
            case "stop" -> {
                if (ignoreStop) {
                    return;
                }
                info("Stopping the server");
                shutdownSequence();
                System.exit(0);
            }
            case "fake:join" -> fakeJoin(rest);
            case "fake:leave" -> {
                Player p;
                synchronized (online) {
                    p = online.remove(rest.toLowerCase(Locale.ROOT));
                }
                if (p == null) {
                    info("Fake: " + rest + " is not online");
                } else {
                    info(p.name() + " lost connection: Disconnected");
                    info(p.name() + " left the game");
                }
            }
            case "fake:chat" -> {
                int sp = rest.indexOf(' ');
                String name = sp < 0 ? rest : rest.substring(0, sp);
                info("[Not Secure] <" + name + "> " + (sp < 0 ? "" : rest.substring(sp + 1)));
            }
            case "fake:crash" -> {
                log(MAIN, "ERROR", "Encountered an unexpected exception");
                raw("java.lang.IllegalStateException: simulated crash");
                raw("\tat FakeServer.handle(FakeServer.java)");
                raw("\tat FakeServer.main(FakeServer.java)");
                synchronized (LOG_LOCK) {
                    out.flush();
                }
                Runtime.getRuntime().halt(1);
            }
            case "fake:ignore-stop" -> {
                ignoreStop = true;
                info("Fake: stop and SIGTERM are ignored from now on");
            }
            case "fake:exit" -> {
                int status;
                try {
                    status = Integer.parseInt(rest.trim());
                } catch (NumberFormatException e) {
                    status = 1;
                }
                synchronized (LOG_LOCK) {
                    out.flush();
                }
                Runtime.getRuntime().halt(status);
            }
            case "fake:say-lines" -> {
                int n = Integer.parseInt(rest.trim());
                for (int i = 1; i <= n; i++) {
                    info("line " + i);
                }
            }
            default -> unknown(command);
        }
    }

    static void listCommand(String command, String rest) {
        if (!rest.isEmpty() && !rest.equals("uuids")) {
            unknown(command);
            return;
        }
        List<String> names = new ArrayList<>();
        synchronized (online) {
            for (Player p : online.values()) {
                names.add(rest.isEmpty() ? p.name() : p.name() + " (" + p.uuid() + ")");
            }
        }
        info("There are " + names.size() + " of a max of " + maxPlayers + " players online: " + String.join(", ", names));
    }

    static void opCommand(String command, String rest, boolean add) throws IOException {
        if (rest.isEmpty()) {
            unknown(command);
            return;
        }
        if (!validName(rest)) {
            return;
        }
        String key = rest.toLowerCase(Locale.ROOT);
        synchronized (LISTS) {
            if (add) {
                if (ops.containsKey(key)) {
                    info("Nothing changed. The player already is an operator");
                    return;
                }
                ops.put(key, new Op(offlineUuid(rest), rest, opLevel, false));
                saveOps();
                info("Made " + rest + " a server operator");
            } else {
                Op removed = ops.remove(key);
                if (removed == null) {
                    info("Nothing changed. The player is not an operator");
                    return;
                }
                saveOps();
                info("Made " + removed.name() + " no longer a server operator");
            }
        }
    }

    static void whitelistCommand(String command, String rest) throws IOException {
        int space = rest.indexOf(' ');
        String sub = space < 0 ? rest : rest.substring(0, space);
        String arg = space < 0 ? "" : rest.substring(space + 1).strip();
        switch (sub) {
            case "add", "remove" -> {
                if (arg.isEmpty()) {
                    unknown(command);
                    return;
                }
                if (!validName(arg)) {
                    return;
                }
                String key = arg.toLowerCase(Locale.ROOT);
                synchronized (LISTS) {
                    if (sub.equals("add")) {
                        if (whitelist.containsKey(key)) {
                            info("Player is already whitelisted");
                            return;
                        }
                        whitelist.put(key, new Profile(offlineUuid(arg), arg));
                        saveWhitelist();
                        info("Added " + arg + " to the whitelist");
                    } else {
                        Profile removed = whitelist.remove(key);
                        if (removed == null) {
                            info("Player is not whitelisted");
                            return;
                        }
                        saveWhitelist();
                        info("Removed " + removed.name() + " from the whitelist");
                    }
                }
            }
            case "list" -> {
                if (!arg.isEmpty()) {
                    unknown(command);
                    return;
                }
                List<String> names = new ArrayList<>();
                synchronized (LISTS) {
                    for (Profile p : whitelist.values()) {
                        names.add(p.name());
                    }
                }
                if (names.isEmpty()) {
                    info("There are no whitelisted players");
                } else {
                    info("There are " + names.size() + " whitelisted player(s): " + String.join(", ", names));
                }
            }
            case "on", "off" -> {
                if (!arg.isEmpty()) {
                    unknown(command);
                    return;
                }
                boolean on = sub.equals("on");
                if (whiteList == on) {
                    info(on ? "Whitelist is already turned on" : "Whitelist is already turned off");
                    return;
                }
                whiteList = on;
                setProperty("white-list", Boolean.toString(on));
                info(on ? "Whitelist is now turned on" : "Whitelist is now turned off");
            }
            case "reload" -> {
                if (!arg.isEmpty()) {
                    unknown(command);
                    return;
                }
                loadLists();
                info("Reloaded the whitelist");
            }
            default -> unknown(command);
        }
    }

    static void kickCommand(String command, String rest) {
        if (rest.isEmpty()) {
            unknown(command);
            return;
        }
        int space = rest.indexOf(' ');
        String name = space < 0 ? rest : rest.substring(0, space);
        String reason = space < 0 ? "Kicked by an operator" : rest.substring(space + 1).strip();
        Player p;
        synchronized (online) {
            p = online.remove(name.toLowerCase(Locale.ROOT));
        }
        if (p == null) {
            info("No player was found");
            return;
        }
        info(p.name() + " lost connection: " + reason);
        info(p.name() + " left the game");
        info("Kicked " + p.name() + ": " + reason);
    }

    static void fakeJoin(String name) {
        if (!PLAYER_NAME.matcher(name).matches()) {
            info("Fake: invalid player name " + name);
            return;
        }
        String uuid = offlineUuid(name);
        int clientPort = ThreadLocalRandom.current().nextInt(40000, 65000);
        String key = name.toLowerCase(Locale.ROOT);
        log("User Authenticator #" + authenticators.incrementAndGet(), "INFO", "UUID of player " + name + " is " + uuid);
        boolean allowed;
        synchronized (LISTS) {
            allowed = !whiteList || whitelist.containsKey(key) || ops.containsKey(key);
        }
        if (!allowed) {
            info("Disconnecting " + name + " (/127.0.0.1:" + clientPort + "): You are not white-listed on this server!");
            return;
        }
        synchronized (online) {
            if (!online.containsKey(key) && online.size() >= maxPlayers) {
                info("Disconnecting " + name + " (/127.0.0.1:" + clientPort + "): The server is full!");
                return;
            }
            online.remove(key);
            online.put(key, new Player(name, uuid, clientPort));
        }
        info(name + "[/127.0.0.1:" + clientPort + "] logged in with entity id " + entityIds.incrementAndGet() + " at (0.5, 64.0, 0.5)");
        info(name + " joined the game");
    }

    // ---- stopping -----------------------------------------------------------------------

    static void shutdownSequence() {
        if (!stopping.compareAndSet(false, true)) {
            return;
        }
        info("Stopping server");
        info("Saving players");
        List<Player> players;
        synchronized (online) {
            players = new ArrayList<>(online.values());
            online.clear();
        }
        for (Player p : players) {
            info(p.name() + " lost connection: Server closed");
            info(p.name() + " left the game");
        }
        info("Saving worlds");
        try {
            synchronized (WORLD_LOCK) {
                if (savingEnabled) {
                    info("Saving chunks for level 'ServerLevel[world]'/minecraft:overworld");
                    saveWorld();
                    info("ThreadedAnvilChunkStorage (world): All chunks are saved");
                }
                info("ThreadedAnvilChunkStorage: All dimensions are saved");
            }
        } catch (IOException e) {
            log(MAIN, "ERROR", "Failed to save the world: " + e);
        }
        try {
            if (serverSocket != null) {
                serverSocket.close();
            }
        } catch (IOException ignored) {
            // closing anyway
        }
    }

    static void onShutdownSignal() {
        if (ignoreStop) {
            while (true) {
                try {
                    Thread.sleep(Long.MAX_VALUE);
                } catch (InterruptedException ignored) {
                    // only SIGKILL ends this process now
                }
            }
        }
        shutdownSequence();
    }

    private FakeServer() {
    }
}
