// A second MongoDB wire-protocol server for the benchmarks: mongo-java-server
// (de.bwaldvogel, in-memory backend) on a free loopback port. It prints the
// MongoDB URI on stdout and runs until killed.
//
// Two shims, because the library implements the commands the scheduler uses
// but predates their names: it answers `hello` as `isMaster` (the scheduler
// reads the server's clock from it), and it reports wire version 13
// (MongoDB 5.0) instead of 8, which PyMongo 4.9+ refuses.
//
// A third because it counts an insert's documents wrongly: with write errors
// (duplicate keys) it still answers `n` = all the documents sent, where
// MongoDB counts those inserted (up to the first error when ordered, all but
// the refused ones when not); the scheduler's retried inserts count their
// own documents from `n` (tests/store/test_bulk_writes.py failed on it).
//
// A fourth, for what any MongoDB does with an index: the library serves a
// query from a unique index only when the query names exactly the index's
// keys (AbstractUniqueIndex.canHandle compares the key sets with equals), so
// {_id: X, status: 'queued'}, the guarded update by _id of the run and of the
// fair floor alike, read the whole collection: 500 of them over 20,000
// documents took 3.07 s (0.11 s with this shim), and a 5,000-user run
// slowed from 304 to 30 invitations a second by 20,000. UniqueKeyIndex lets a unique index serve
// a query that has all of its keys, by their conditions alone; the
// collection then matches every document it returns against the whole query
// (AbstractMongoCollection.matchDocuments), so the result is the same.
//
// It is not MongoDB: its memory backend keeps only unique indexes, so queries
// on other fields scan their collection, and its figures are no stand-in for
// a real server's. What it shows is the scheduler's own cost with a faster
// server than FerretDB. The scheduler's real-server tests pass against it
// (FAF_TEST_MONGODB_URI: 240 passed, 2026-12-07), so these shims hold for
// everything the scheduler asks of it.
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.ServerVersion;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.backend.memory.MemoryDatabase;
import de.bwaldvogel.mongo.backend.memory.index.MemoryUniqueIndex;
import de.bwaldvogel.mongo.bson.Document;
import io.netty.channel.Channel;
import java.net.InetSocketAddress;
import java.util.List;

public class Server {
    static class UniqueKeyIndex extends MemoryUniqueIndex {
        UniqueKeyIndex(String name, List<IndexKey> keys, boolean sparse) {
            super(name, keys, sparse);
        }

        // The query's conditions on this index's keys, or the query itself
        // when it lacks one of them (which the library then refuses, as before).
        private Document onKeys(Document query) {
            if (!query.keySet().containsAll(keySet())) {
                return query;
            }
            Document conditions = new Document();
            for (String key : keys()) {
                conditions.put(key, query.get(key));
            }
            return conditions;
        }

        @Override
        public synchronized boolean canHandle(Document query) {
            return super.canHandle(onKeys(query));
        }

        @Override
        public synchronized Iterable<Integer> getPositions(Document query) {
            return super.getPositions(onKeys(query));
        }
    }

    static class Database extends MemoryDatabase {
        Database(String name, CursorRegistry cursors) {
            super(name, cursors);
        }

        @Override
        protected Index<Integer> openOrCreateUniqueIndex(
                String collection, String name, List<IndexKey> keys, boolean sparse) {
            return new UniqueKeyIndex(name, keys, sparse);
        }
    }

    static class Backend extends MemoryBackend {
        @Override
        public MemoryDatabase openOrCreateDatabase(String name) {
            return new Database(name, getCursorRegistry());
        }

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
            if (name.equals("insert") && result.get("writeErrors") instanceof List<?> errors
                    && !errors.isEmpty() && query.get("documents") instanceof List<?> documents) {
                boolean ordered = !Boolean.FALSE.equals(query.get("ordered"));
                Object first = ((Document) errors.get(0)).get("index");
                result.put("n", ordered ? ((Number) first).intValue() : documents.size() - errors.size());
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
