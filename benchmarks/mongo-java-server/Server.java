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
// documents took 3.07 s (0.11 s with this shim), and a 5,000-user run slowed
// from 304 to 30 invitations a second by 20,000. UniqueKeyIndex lets a
// unique index serve a query that has all of its keys, by their conditions
// alone; the collection then matches every document it returns against the
// whole query (AbstractMongoCollection.matchDocuments), so the result is the
// same.
//
// A fifth, for the indexes a B-tree serves by a prefix: the library ignores
// every index that is not unique ("adding secondary index ... is not yet
// implemented") and serves a compound unique one only with all its keys, so
// a run read its users' contacts ({ownerId: {$in: [...]}}) and their
// invitations ({fromUserId: {$in: [...]}, month}) by reading the whole
// collection, each batch over a collection that grows with the run, while
// the fair floor reads nothing (a JFR profile of the server during a
// 1,000-user run: 110 of 247 samples matching documents for `find`).
// LeadingKeyIndex serves a query with an equality or `$in` on an index's
// first key: a hash of that key's values (each element of an array) to the
// documents' positions; every other condition is left to the matcher, as
// above. PlannedCollection takes, of the indexes that can serve a query, the
// one with the fewest candidates (the library takes the first: {month,
// status}, every invitation of the month). `monthly_invitations.py --server
// java --users 500 5000`, 2026-12-07, its 5,000-user part: run / fair floor
// 3.56 with the fourth shim alone, 2.03 with leading keys, 1.39 with the
// prefixes of unique keys and the fewest candidates. The same collection
// walks a query sorted by _id with a limit ({_id: {$gt: last}}, keyset
// paging) in _id order and stops at the limit, as MongoDB's _id index does:
// the hourly run over 50,000 users took 9.55 s, 3.73 s with the walk
// (`observe.py --server java`), and 2.10 s once documents found by the _id
// index are not tested against every value of the query's `$in` again
// (1,000 ids per page of cycle markers: a million comparisons a page).
//
// It is not MongoDB, and its figures are no stand-in for a real server's:
// it keeps each index as hashes (no ranges, no sorts from an index). What it
// shows is the scheduler's own cost with a faster server than FerretDB. The
// scheduler's real-server tests pass against it (FAF_TEST_MONGODB_URI: 240
// passed, 2026-12-07), so these shims hold for everything the scheduler asks
// of it.
import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.ServerVersion;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.Missing;
import de.bwaldvogel.mongo.backend.QueryResult;
import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.backend.ValueComparator;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.backend.memory.MemoryCollection;
import de.bwaldvogel.mongo.backend.memory.MemoryDatabase;
import de.bwaldvogel.mongo.backend.memory.index.MemoryUniqueIndex;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.bson.ObjectId;
import de.bwaldvogel.mongo.exception.KeyConstraintError;
import io.netty.channel.Channel;
import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

public class Server {
    static class UniqueKeyIndex extends MemoryUniqueIndex {
        // A compound key's first key, as LeadingKeyIndex: what a B-tree's
        // prefix serves ({fromUserId: {$in: [...]}, month} with the app's
        // {fromUserId, toEmail, month}).
        private final LeadingKeyIndex prefix;

        UniqueKeyIndex(String name, List<IndexKey> keys, boolean sparse) {
            super(name, keys, sparse);
            prefix = keys.size() > 1 ? new LeadingKeyIndex(name, keys, sparse) : null;
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
            return super.canHandle(onKeys(query)) || (prefix != null && prefix.canHandle(query));
        }

        @Override
        public synchronized Iterable<Integer> getPositions(Document query) {
            Document conditions = onKeys(query);
            return super.canHandle(conditions) ? super.getPositions(conditions) : prefix.getPositions(query);
        }

        @Override
        public synchronized void add(Document document, Integer position, MongoCollection<Integer> collection) {
            super.add(document, position, collection);
            if (prefix != null) {
                prefix.add(document, position, collection);
            }
        }

        @Override
        public synchronized Integer remove(Document document) {
            Integer position = super.remove(document);
            if (prefix != null) {
                prefix.remove(document);
            }
            return position;
        }

        @Override
        public void updateInPlace(Document old, Document updated, Integer position,
                MongoCollection<Integer> collection) throws KeyConstraintError {
            super.updateInPlace(old, updated, position, collection);
            if (prefix != null) {
                prefix.updateInPlace(old, updated, position, collection);
            }
        }

        @Override
        public synchronized void drop() {
            super.drop();
            if (prefix != null) {
                prefix.drop();
            }
        }
    }

    static class LeadingKeyIndex extends Index<Integer> {
        private final String key;
        private final Map<Object, Set<Integer>> byValue = new HashMap<>();
        // Documents whose value at the key is not a plain value (a subdocument,
        // an array holding one): every query is given them, the matcher decides.
        private final Set<Integer> unindexed = new HashSet<>();
        private final Map<Object, Integer> positionOfId = new HashMap<>();
        private final Map<Integer, List<Object>> valuesAt = new HashMap<>();

        LeadingKeyIndex(String name, List<IndexKey> keys, boolean sparse) {
            super(name, keys, sparse);
            this.key = keys.get(0).getKey();
        }

        // A value this index can look up, normalized as the matcher compares
        // it (1, 1L and 1.0 are one number), or null when it cannot.
        private static Object plain(Object value) {
            if (value instanceof Number number) {
                return Utils.normalizeNumber(number);
            }
            if (value instanceof String || value instanceof ObjectId || value instanceof Boolean
                    || value instanceof Instant) {
                return value;
            }
            return null;
        }

        // The document's values at the key, or null when one is not plain.
        private List<Object> valuesOf(Document document) {
            Object value = Utils.getSubdocumentValueCollectionAware(document, key);
            List<Object> values = new ArrayList<>();
            if (value == null || value instanceof Missing) {
                return values;  // no equality with a plain value matches it
            }
            for (Object each : value instanceof Collection<?> many ? many : List.of(value)) {
                Object found = plain(each);
                if (found == null) {
                    return null;
                }
                values.add(found);
            }
            return values;
        }

        // The plain values a query asks the key to equal, or null when it
        // asks anything else of it.
        private static List<Object> wanted(Object condition) {
            List<Object> values = new ArrayList<>();
            if (condition instanceof Document operators) {
                if (operators.size() != 1 || !(operators.get("$in") instanceof Collection<?> in)) {
                    return null;
                }
                for (Object each : in) {
                    Object found = plain(each);
                    if (found == null) {
                        return null;
                    }
                    values.add(found);
                }
                return values;
            }
            Object found = plain(condition);
            return found == null ? null : List.of(found);
        }

        @Override
        public synchronized boolean canHandle(Document query) {
            return query.containsKey(key) && wanted(query.get(key)) != null;
        }

        @Override
        public synchronized Iterable<Integer> getPositions(Document query) {
            Set<Integer> positions = new TreeSet<>(unindexed);  // in the collection's order
            for (Object value : wanted(query.get(key))) {
                positions.addAll(byValue.getOrDefault(value, Set.of()));
            }
            return positions;
        }

        @Override
        public synchronized void add(Document document, Integer position, MongoCollection<Integer> collection) {
            positionOfId.put(document.get("_id"), position);
            List<Object> values = valuesOf(document);
            if (values == null) {
                unindexed.add(position);
            } else {
                for (Object value : values) {
                    byValue.computeIfAbsent(value, unused -> new HashSet<>()).add(position);
                }
            }
            valuesAt.put(position, values);
        }

        private void forget(Integer position) {
            List<Object> values = valuesAt.remove(position);
            if (values == null) {
                unindexed.remove(position);
                return;
            }
            for (Object value : values) {
                Set<Integer> positions = byValue.get(value);
                positions.remove(position);
                if (positions.isEmpty()) {
                    byValue.remove(value);
                }
            }
        }

        @Override
        public synchronized Integer remove(Document document) {
            Integer position = positionOfId.remove(document.get("_id"));
            if (position != null) {
                forget(position);
            }
            return position;
        }

        @Override
        public synchronized void updateInPlace(Document old, Document updated, Integer position,
                MongoCollection<Integer> collection) {
            forget(position);
            add(updated, position, collection);
        }

        @Override
        public Integer getPosition(Document document) {
            return null;  // the _id index tells a document's position
        }

        @Override
        public void checkAdd(Document document, MongoCollection<Integer> collection) {
        }

        @Override
        public void checkUpdate(Document old, Document updated, MongoCollection<Integer> collection) {
        }

        @Override
        public synchronized long getCount() {
            return positionOfId.size();
        }

        @Override
        public long getDataSize() {
            return 0;
        }

        @Override
        public synchronized void drop() {
            byValue.clear();
            unindexed.clear();
            positionOfId.clear();
            valuesAt.clear();
        }
    }

    // Serves a query from the index that gives the fewest candidates, as a
    // planner would; the library takes the first index that can serve it
    // ({month, status} before {fromUserId, toEmail, month}: every invitation
    // of the month, for one batch's senders). And a query sorted by _id with
    // a limit (keyset paging, {_id: {$gt: last}}) walks the documents in _id
    // order and stops at the limit, as MongoDB's _id index does; the library
    // reads and sorts the whole collection for each page.
    static class PlannedCollection extends MemoryCollection {
        private final TreeMap<Object, Integer> byId = new TreeMap<>(ValueComparator.asc());
        private boolean everyDocumentHasAnId = true;

        PlannedCollection(MongoDatabase database, String name, CollectionOptions options, CursorRegistry cursors) {
            super(database, name, options, cursors);
        }

        @Override
        protected Integer addDocumentInternal(Document document) {
            Integer position = super.addDocumentInternal(document);
            Object id = document.get("_id");
            if (id == null) {
                everyDocumentHasAnId = false;
            } else {
                byId.put(id, position);
            }
            return position;
        }

        @Override
        protected void removeDocument(Integer position) {
            Document document = getDocument(position);
            if (document != null && document.get("_id") != null) {
                byId.remove(document.get("_id"));
            }
            super.removeDocument(position);
        }

        // The ids from which a walk in _id order starts, or null when the
        // query's condition on _id is not a plain lower bound (or absent).
        private NavigableMap<Object, Integer> walkFrom(Object condition) {
            if (condition == null) {
                return byId;
            }
            if (condition instanceof Document bound && bound.size() == 1) {
                if (bound.containsKey("$gt")) {
                    return byId.tailMap(bound.get("$gt"), false);
                }
                if (bound.containsKey("$gte")) {
                    return byId.tailMap(bound.get("$gte"), true);
                }
            }
            return null;
        }

        @Override
        protected QueryResult queryDocuments(Document query, Document orderBy, int skip, int limit,
                int batchSize, Document projection) {
            int wanted = skip + Math.abs(limit);
            if (limit != 0 && everyDocumentHasAnId && orderBy != null && orderBy.size() == 1
                    && orderBy.get("_id") instanceof Number direction && direction.doubleValue() > 0) {
                NavigableMap<Object, Integer> walk = walkFrom(query.get("_id"));
                if (walk != null) {
                    List<Integer> found = new ArrayList<>();
                    for (Integer position : walk.values()) {
                        if (documentMatchesQuery(getDocument(position), query)) {
                            found.add(position);
                            if (found.size() >= wanted) {
                                break;
                            }
                        }
                    }
                    return matchDocuments(query, found, orderBy, skip, limit, batchSize, projection);
                }
            }
            List<Integer> fewest = null;
            Index<Integer> chosen = null;
            for (Index<Integer> index : getIndexes()) {
                if (index.canHandle(query)) {
                    List<Integer> positions = new ArrayList<>();
                    index.getPositions(query).forEach(positions::add);
                    if (fewest == null || positions.size() < fewest.size()) {
                        fewest = positions;
                        chosen = index;
                    }
                }
            }
            if (fewest == null) {
                return matchDocuments(query, orderBy, skip, limit, batchSize, projection);
            }
            return matchDocuments(rest(query, chosen), fewest, orderBy, skip, limit, batchSize, projection);
        }

        // What is left to match once the _id index gave the documents whose
        // _id equals the query's value or one of its `$in` values: the library
        // would test each document against every `$in` value again (1,000 ids
        // per page of cycle markers: a million comparisons a page).
        private static Document rest(Document query, Index<Integer> chosen) {
            List<IndexKey> keys = chosen.getKeys();
            if (keys.size() != 1 || !keys.get(0).getKey().equals("_id") || !chosen.isUnique()) {
                return query;
            }
            if (LeadingKeyIndex.wanted(query.get("_id")) == null) {
                return query;  // not an equality or `$in` of plain values: the matcher decides
            }
            Document rest = new Document(query);
            rest.remove("_id");
            return rest;
        }
    }

    static class Database extends MemoryDatabase {
        private final CursorRegistry cursors;

        Database(String name, CursorRegistry cursors) {
            super(name, cursors);
            this.cursors = cursors;
        }

        @Override
        protected MemoryCollection openOrCreateCollection(String name, CollectionOptions options) {
            return new PlannedCollection(this, name, options, cursors);
        }

        @Override
        protected Index<Integer> openOrCreateUniqueIndex(
                String collection, String name, List<IndexKey> keys, boolean sparse) {
            return new UniqueKeyIndex(name, keys, sparse);
        }

        @Override
        protected Index<Integer> openOrCreateSecondaryIndex(
                String collection, String name, List<IndexKey> keys, boolean sparse) {
            return new LeadingKeyIndex(name, keys, sparse);
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
