/*
 * A hostile game server for the mcdash isolation tests: before it runs the fake server
 * (FakeServer.main, so it still starts, answers pings and obeys the console), it tries what
 * untrusted code would try against the machine that runs it, and records each attempt.
 *
 * It reads its targets from hostile-probe.properties in its working directory:
 *   read.N=PATH          files it tries to read (secrets, another server's files)
 *   write.N=PATH         files it tries to create outside its own directory
 *   redis=HOST:PORT      a Redis it tries to write to (SET mcdash:pwned 1), without password
 *   postgres.tcp=HOST:PORT  a PostgreSQL it tries to log in to as postgres, without password
 *   postgres.socket=PATH    the same over a unix socket
 *   kill=PID             a process (the worker) it tries to kill
 * and writes hostile-probe-results.properties: for every attempt `NAME=denied: why` or
 * `NAME=ALLOWED: what it got`, plus `env=<names of its environment variables>` and
 * `processes=<how many processes it can see>`. Each line is also printed to the console.
 */

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.TreeMap;
import java.util.TreeSet;

public class HostileProbe {
    private static final Map<String, String> RESULTS = new TreeMap<>();

    public static void main(String[] args) throws Exception {
        Path config = Path.of("hostile-probe.properties");
        if (Files.exists(config)) {
            probe(config);
        }
        FakeServer.main(args);
    }

    private static void probe(Path config) throws IOException {
        Properties targets = new Properties();
        try (InputStream in = Files.newInputStream(config)) {
            targets.load(in);
        }
        RESULTS.put("env", String.join(",", new TreeSet<>(System.getenv().keySet())));
        RESULTS.put("processes", String.valueOf(ProcessHandle.allProcesses().count()));
        for (String key : new TreeSet<>(targets.stringPropertyNames())) {
            String target = targets.getProperty(key);
            String outcome;
            try {
                outcome = attempt(key, target);
            } catch (Exception e) {
                outcome = "denied: " + e.getClass().getSimpleName() + ": " + e.getMessage();
            }
            RESULTS.put(key, outcome.replace('\n', ' '));
        }
        StringBuilder report = new StringBuilder();
        for (Map.Entry<String, String> entry : RESULTS.entrySet()) {
            report.append(entry.getKey()).append('=').append(entry.getValue()).append('\n');
            System.out.println("[Hostile] " + entry.getKey() + " " + entry.getValue());
        }
        Files.writeString(Path.of("hostile-probe-results.properties"), report.toString());
    }

    private static String attempt(String key, String target) throws Exception {
        if (key.startsWith("read.")) {
            byte[] data = Files.readAllBytes(Path.of(target));
            return "ALLOWED: read " + data.length + " bytes";
        }
        if (key.startsWith("write.")) {
            Files.writeString(Path.of(target), "written by a game server\n",
                StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            return "ALLOWED: created " + target;
        }
        if (key.equals("redis")) {
            return redis(target);
        }
        if (key.equals("postgres.tcp")) {
            String[] hostPort = target.split(":");
            try (Socket socket = new Socket()) {
                socket.connect(new InetSocketAddress(hostPort[0], Integer.parseInt(hostPort[1])), 2000);
                socket.setSoTimeout(3000);
                return postgres(socket.getInputStream(), socket.getOutputStream());
            }
        }
        if (key.equals("postgres.socket")) {
            try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                channel.connect(UnixDomainSocketAddress.of(target));
                return postgres(java.nio.channels.Channels.newInputStream(channel),
                    java.nio.channels.Channels.newOutputStream(channel));
            }
        }
        if (key.equals("kill")) {
            Optional<ProcessHandle> process = ProcessHandle.of(Long.parseLong(target));
            if (process.isEmpty()) {
                return "denied: no such process in view";
            }
            boolean sent = process.get().destroyForcibly();
            return sent ? "ALLOWED: SIGKILL sent" : "denied: kill refused";
        }
        return "denied: unknown probe";
    }

    private static String redis(String target) throws IOException {
        String[] hostPort = target.split(":");
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(hostPort[0], Integer.parseInt(hostPort[1])), 2000);
            socket.setSoTimeout(3000);
            OutputStream out = socket.getOutputStream();
            out.write("*3\r\n$3\r\nSET\r\n$12\r\nmcdash:pwned\r\n$1\r\n1\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            byte[] reply = new byte[128];
            int n = socket.getInputStream().read(reply);
            String answer = n > 0 ? new String(reply, 0, n, StandardCharsets.US_ASCII).trim() : "";
            return answer.startsWith("+OK") ? "ALLOWED: " + answer : "denied: " + answer;
        }
    }

    /** A StartupMessage as user postgres; AuthenticationOk (R, code 0) means no password was needed. */
    private static String postgres(InputStream in, OutputStream out) throws IOException {
        byte[] params = "user\0postgres\0database\0postgres\0\0".getBytes(StandardCharsets.US_ASCII);
        ByteBuffer message = ByteBuffer.allocate(8 + params.length);
        message.putInt(8 + params.length).putInt(196608).put(params);
        out.write(message.array());
        out.flush();
        int type = in.read();
        byte[] header = in.readNBytes(8);
        if (type == 'R' && header.length == 8) {
            int code = ByteBuffer.wrap(header, 4, 4).getInt();
            return code == 0 ? "ALLOWED: logged in without a password" : "denied: password required (auth " + code + ")";
        }
        return "denied: server answered " + (char) type;
    }
}
