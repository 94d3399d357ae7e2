// A second MongoDB wire-protocol server for the benchmarks: mongo-java-server
// (de.bwaldvogel, in-memory backend) on a free loopback port. It prints the
// MongoDB URI on stdout and runs until killed.
//
// Two shims, because the library implements the commands the scheduler uses
// but predates their names: it answers `hello` as `isMaster` (the scheduler
// reads the server's clock from it), and it reports wire version 13
// (MongoDB 5.0) instead of 8, which PyMongo 4.9+ refuses. The scheduler's
// real-server tests pass against it (FAF_TEST_MONGODB_URI), so these two
// claims hold for everything the scheduler asks of it.
//
// It is not MongoDB: its memory backend uses only unique indexes, so queries
// on other fields scan their collection, and its figures are no stand-in for
// a real server's. What it shows is the scheduler's own cost with a faster
// server than FerretDB.
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.ServerVersion;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.Document;
import io.netty.channel.Channel;
import java.net.InetSocketAddress;

public class Server {
    static class Backend extends MemoryBackend {
        @Override
        public Document handleCommand(Channel channel, String database, String command, Document query) {
            String name = command.toLowerCase();
            boolean hello = name.equals("hello");
            Document result = super.handleCommand(channel, database, hello ? "isMaster" : command, query);
            if (hello) {
                result.put("isWritablePrimary", true);
            }
            if (hello || name.equals("ismaster")) {
                result.put("maxWireVersion", 13);
            }
            return result;
        }
    }

    public static void main(String[] args) throws Exception {
        MongoServer server = new MongoServer(new Backend().version(ServerVersion.MONGO_5_0));
        server.bind("127.0.0.1", 0);
        InetSocketAddress address = server.getLocalAddress();
        System.out.println("mongodb://127.0.0.1:" + address.getPort() + "/");
        System.out.flush();
        Thread.currentThread().join();
    }
}
