package clandestino.esnode;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.http.HttpServerTransport;
import org.elasticsearch.node.ClasspathPluginNode;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.transport.netty4.Netty4Plugin;

/**
 * Starts one real Elasticsearch node in this JVM: the server with the Netty4 transport module (no
 * x-pack, hence no security), bound to 127.0.0.1. Prints exactly one line, {@code URL
 * http://127.0.0.1:PORT}, on stdout once the node answers HTTP; logs go to stderr. Runs until its
 * standard input closes, then closes the node and exits.
 *
 * <p>Usage: {@code SingleNode WORKDIR [HTTP_PORT]} (HTTP_PORT 0 or absent: a free port).
 *
 * <p>One node of a cluster instead, with system properties: {@code esnode.name} (the node's name),
 * {@code esnode.transport.port}, {@code esnode.seed.hosts} (host:port of every node's transport,
 * comma-separated) and {@code esnode.initial.masters} (the names of the first master-eligible
 * nodes). The {@code URL} line then comes once the cluster has formed and is green.
 */
public final class SingleNode {
    private static final String NODE_NAME = System.getProperty("esnode.name", "node-0");
    private static final String SEED_HOSTS = System.getProperty("esnode.seed.hosts", "");
    private static final String INITIAL_MASTERS = System.getProperty("esnode.initial.masters", "");

    private static volatile Node node;

    private SingleNode() {}

    public static void main(String[] args) {
        // Logging setup replaces System.out and System.err by log4j streams: keep the real ones.
        PrintStream out = System.out;
        PrintStream err = System.err;
        if (args.length < 1 || args.length > 2) {
            err.println("usage: SingleNode WORKDIR [HTTP_PORT]");
            System.exit(2);
        }
        Thread stdinWatcher = new Thread(SingleNode::waitForStdinEof, "stdin-watcher");
        stdinWatcher.setDaemon(true);
        stdinWatcher.start();
        try {
            String url = start(Path.of(args[0]).toAbsolutePath(), args.length > 1 ? args[1] : "0");
            out.println("URL " + url);
            out.flush();
            // The node's threads are daemons: keep the JVM up until the watcher ends it.
            stdinWatcher.join();
        } catch (Throwable e) {
            err.println("elasticsearch node failed to start:");
            e.printStackTrace(err);
            err.flush();
            Runtime.getRuntime().halt(1);
        }
    }

    private static String start(Path work, String httpPort) throws Exception {
        Path home = Files.createDirectories(work.resolve("home"));
        Path config = Files.createDirectories(home.resolve("config"));
        Files.createDirectories(home.resolve("plugins"));
        Files.createDirectories(home.resolve("modules"));
        Path data = Files.createDirectories(work.resolve("data"));
        Path logs = Files.createDirectories(work.resolve("logs"));
        Path repo = Files.createDirectories(work.resolve("repo"));
        Path log4jConfig = config.resolve("log4j2.properties");
        Files.writeString(
            log4jConfig,
            String.join(
                "\n",
                "status = error",
                "appender.console.type = Console",
                "appender.console.name = console",
                "appender.console.target = SYSTEM_ERR",
                "appender.console.layout.type = PatternLayout",
                "appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n",
                "rootLogger.level = " + System.getProperty("esnode.log.level", "info"),
                "rootLogger.appenderRef.console.ref = console",
                ""
            )
        );
        // Before log4j first looks for a configuration (the test framework jar has a log4j2-test one).
        System.setProperty("log4j2.configurationFile", log4jConfig.toString());
        linkNativeLibraries(work.resolve("native"));

        Settings.Builder builder = Settings.builder();
        if (SEED_HOSTS.isEmpty()) {
            builder.put("discovery.type", "single-node");
        } else {
            builder.putList("discovery.seed_hosts", List.of(SEED_HOSTS.split(",")))
                .putList("cluster.initial_master_nodes", List.of(INITIAL_MASTERS.split(",")));
        }
        Settings settings = builder
            .put("cluster.name", "clandestino-test")
            .put("node.name", NODE_NAME)
            .put("path.home", home.toString())
            .put("path.data", data.toString())
            .put("path.logs", logs.toString())
            .put("path.repo", repo.toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", System.getProperty("esnode.transport.port", "0"))
            .put("node.processors", Math.min(2, Runtime.getRuntime().availableProcessors()))
            // Tests must not fail because the disk of the machine is nearly full.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("indices.breaker.total.use_real_memory", false)
            .build();

        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName(NODE_NAME);
        LogConfigurator.setClusterName("clandestino-test");
        Environment environment = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), config, () -> NODE_NAME);
        LogConfigurator.configure(environment, true);

        Node started = new ClasspathPluginNode(environment, List.of(Netty4Plugin.class, RootInfoPlugin.class));
        node = started;
        started.start();
        HttpServerTransport http = started.injector().getInstance(HttpServerTransport.class);
        int port = http.boundAddress().publishAddress().getPort();
        String url = "http://127.0.0.1:" + port;
        waitForHttp(url + "/_cluster/health?wait_for_status=green&timeout=50s", 120_000);
        waitForHttp(url + "/", 30_000);
        return url;
    }

    /**
     * Elasticsearch binds libzstd (used by the best_compression codec) from its own platform
     * directory, which only a distribution has: point it at the system's libzstd (Debian's
     * libzstd1), if any.
     */
    private static void linkNativeLibraries(Path dir) throws IOException {
        Files.createDirectories(dir);
        Path link = dir.resolve(System.mapLibraryName("zstd"));
        if (Files.exists(link, java.nio.file.LinkOption.NOFOLLOW_LINKS) == false) {
            for (String candidate : List.of(
                "/usr/lib/x86_64-linux-gnu/libzstd.so.1",
                "/lib/x86_64-linux-gnu/libzstd.so.1",
                "/usr/lib/aarch64-linux-gnu/libzstd.so.1",
                "/lib/aarch64-linux-gnu/libzstd.so.1",
                "/usr/lib64/libzstd.so.1",
                "/usr/lib/libzstd.so.1"
            )) {
                if (Files.exists(Path.of(candidate))) {
                    Files.createSymbolicLink(link, Path.of(candidate));
                    break;
                }
            }
        }
        System.setProperty("es.nativelibs.path", dir.toString());
        // Elastic's own SIMD library (libvec) is not on Maven Central; without this its absence
        // would disable all native access, zstd included. Lucene's Java code is used instead.
        System.setProperty("org.elasticsearch.nativeaccess.enableVectorLibrary", "false");
    }

    private static void waitForStdinEof() {
        InputStream in = System.in;
        byte[] buf = new byte[256];
        try {
            while (in.read(buf) >= 0) {
                // input is ignored: only its end matters
            }
        } catch (IOException e) {
            // treat as closed
        }
        Node current = node;
        int status = 0;
        if (current != null) {
            try {
                current.close();
                if (current.awaitClose(30, TimeUnit.SECONDS) == false) {
                    status = 3;
                }
            } catch (Exception e) {
                status = 3;
            }
        }
        Runtime.getRuntime().halt(status);
    }

    private static void waitForHttp(String url, long timeoutMillis) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        String last = "no answer";
        while (System.nanoTime() < deadline) {
            try {
                HttpURLConnection conn = (HttpURLConnection) URI.create(url).toURL().openConnection();
                conn.setConnectTimeout(2_000);
                conn.setReadTimeout(60_000);
                int code = conn.getResponseCode();
                InputStream body = code < 400 ? conn.getInputStream() : conn.getErrorStream();
                String text = body == null ? "" : new String(body.readAllBytes(), StandardCharsets.UTF_8);
                conn.disconnect();
                if (code == 200) {
                    return;
                }
                last = "HTTP " + code + " " + text;
            } catch (IOException e) {
                last = e.toString();
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("node did not answer " + url + " in time: " + last);
    }
}
