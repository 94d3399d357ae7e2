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
// A sixth and a seventh, from a JFR profile of the server during the
// 100,000-invitation reminders run (2026-12-07: 410 of 1,017 samples in
// `find` matching candidates, 90 in moving index entries on updates):
// a query sorted by an index's first key with a limit and a range of that key
// (the reminders' pages of 10,000 due candidates in `tracking.sentAt` order)
// walks that range in the key's order and stops at the limit, as MongoDB's
// index scan does, instead of matching and sorting every candidate for each
// page (a page over 59,741 due: 734 -> 149 ms); and an update leaves the
// entries of a non-unique index alone when it does not change the index's
// key, as a B-tree does. A randomized check against the library's own
// unsorted path (dates, nulls, missing keys, $and/$or ranges, 1,500 queries)
// found no difference. `reminders.py --server java`: run 24.1 -> 19.7 to
// 22.4 s, the floor 10.0 -> 8.3 to 10.1 s (its guarded pushes no longer
// move index entries); the real-server tests pass against it (240 passed).
//
// It is not MongoDB, and its figures are no stand-in for a real server's:
// it keeps each index as hashes (ranges only for a sorted query). What it
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
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Predicate;

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
        // The same sets of positions in the key's order (ValueComparator's,
        // the matcher's), for a walk over a range of the key; a set is added
        // to it only when its value is new.
        private final TreeMap<Object, Set<Integer>> ordered = new TreeMap<>(ValueComparator.asc());
        // Documents whose value at the key is an array: their place in a sort
        // is not their elements' place in `ordered`, so no walk while any.
        private final Set<Integer> arrays = new HashSet<>();
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

        // The values of a document's value at the key, or null when one is not plain.
        private static List<Object> valuesOf(Object value) {
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
            Object raw = Utils.getSubdocumentValueCollectionAware(document, key);
            enter(position, raw, valuesOf(raw));
        }

        private void enter(Integer position, Object raw, List<Object> values) {
            if (raw instanceof Collection<?>) {
                arrays.add(position);
            }
            if (values == null) {
                unindexed.add(position);
            } else {
                for (Object value : values) {
                    byValue.computeIfAbsent(value, unused -> {
                        Set<Integer> positions = new HashSet<>();
                        ordered.put(value, positions);
                        return positions;
                    }).add(position);
                }
            }
            valuesAt.put(position, values);
        }

        private void forget(Integer position) {
            arrays.remove(position);
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
                    ordered.remove(value);
                }
            }
        }

        // The positions of the documents `matches` accepts whose value at the
        // key lies in `range`, in the key's order, value by value until at
        // least `wanted` are found (the last value's ties all included, so a
        // sort of them by the key and more keys puts the same first `wanted`
        // first as a sort of the whole collection); null when this index
        // cannot tell (a document whose value is not plain, or an array).
        synchronized List<Integer> walk(Range range, Predicate<Integer> matches, int wanted) {
            if (!unindexed.isEmpty() || !arrays.isEmpty()) {
                return null;
            }
            NavigableMap<Object, Set<Integer>> view = ordered;
            if (range.lower() != null && range.upper() != null) {
                if (Range.ORDER.compare(range.lower(), range.upper()) > 0) {
                    return List.of();
                }
                view = ordered.subMap(range.lower(), true, range.upper(), true);
            } else if (range.lower() != null) {
                view = ordered.tailMap(range.lower(), true);
            } else if (range.upper() != null) {
                view = ordered.headMap(range.upper(), true);
            }
            List<Integer> found = new ArrayList<>();
            for (Set<Integer> positions : view.values()) {
                if (found.size() >= wanted) {
                    break;
                }
                for (Integer position : positions) {
                    if (matches.test(position)) {
                        found.add(position);
                    }
                }
            }
            return found;
        }

        String key() {
            return key;
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
            Object raw = Utils.getSubdocumentValueCollectionAware(updated, key);
            List<Object> values = valuesOf(raw);
            if (valuesAt.containsKey(position) && Objects.equals(values, valuesAt.get(position))
                    && (raw instanceof Collection<?>) == arrays.contains(position)) {
                return;  // the key did not change: its entries stay (as a B-tree's do)
            }
            forget(position);
            enter(position, raw, values);
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
            ordered.clear();
            arrays.clear();
            unindexed.clear();
            positionOfId.clear();
            valuesAt.clear();
        }
    }

    // The values a field can take in the documents a query matches, both
    // ends inclusive, null where unbounded: from its conditions on the field
    // ($gt, $gte, $lt, $lte, $eq, a plain value), its `$and` (the narrowest)
    // and its `$or` (the widest of its branches). A condition it does not
    // read only narrows what matches, so the range holds every match; the
    // matcher decides each document.
    record Range(Object lower, Object upper) {
        static final Comparator<Object> ORDER = ValueComparator.asc();
        static final Range ALL = new Range(null, null);

        boolean bounded() {
            return lower != null || upper != null;
        }

        Range and(Range other) {
            return new Range(pick(lower, other.lower, 1), pick(upper, other.upper, -1));
        }

        Range or(Range other) {
            Object low = lower == null || other.lower == null ? null : pick(lower, other.lower, -1);
            Object high = upper == null || other.upper == null ? null : pick(upper, other.upper, 1);
            return new Range(low, high);
        }

        // Of two ends (null: unbounded), the greater when sign > 0, else the lesser.
        private static Object pick(Object a, Object b, int sign) {
            if (a == null || b == null) {
                return a == null ? b : a;
            }
            return Integer.signum(ORDER.compare(a, b)) == sign ? a : b;
        }

        static Range of(Document query, String field) {
            Range range = ALL;
            for (Map.Entry<String, Object> entry : query.entrySet()) {
                Object condition = entry.getValue();
                if (entry.getKey().equals(field)) {
                    range = range.and(ofCondition(condition));
                } else if (entry.getKey().equals("$and") && condition instanceof List<?> all) {
                    for (Object each : all) {
                        if (each instanceof Document part) {
                            range = range.and(of(part, field));
                        }
                    }
                } else if (entry.getKey().equals("$or") && condition instanceof List<?> any && !any.isEmpty()) {
                    Range widest = null;
                    for (Object each : any) {
                        Range branch = each instanceof Document part ? of(part, field) : ALL;
                        widest = widest == null ? branch : widest.or(branch);
                    }
                    range = range.and(widest);
                }
            }
            return range;
        }

        private static Range ofCondition(Object condition) {
            if (condition instanceof Document operators && !operators.isEmpty()
                    && operators.keySet().stream().allMatch(name -> name.startsWith("$"))) {
                Range range = ALL;
                for (Map.Entry<String, Object> entry : operators.entrySet()) {
                    Object value = LeadingKeyIndex.plain(entry.getValue());
                    if (value == null) {
                        continue;
                    }
                    switch (entry.getKey()) {
                        case "$gt", "$gte" -> range = range.and(new Range(value, null));
                        case "$lt", "$lte" -> range = range.and(new Range(null, value));
                        case "$eq" -> range = range.and(new Range(value, value));
                        default -> { }
                    }
                }
                return range;
            }
            Object value = LeadingKeyIndex.plain(condition);
            return value == null ? ALL : new Range(value, value);
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
                    // each one matched already: sorted and cut only
                    return matchDocuments(new Document(), found, orderBy, skip, limit, batchSize, projection);
                }
            }
            if (limit != 0 && orderBy != null && !orderBy.isEmpty()) {
                List<Integer> walked = walkSorted(query, orderBy, wanted);
                if (walked != null) {  // each one matched already: sorted and cut only
                    return matchDocuments(new Document(), walked, orderBy, skip, limit, batchSize, projection);
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

        // A query sorted (ascending) by an index's first key, with a limit and
        // a range of that key (the reminders' pages: { tracking.sentAt: 1,
        // _id: 1 } over their due window): the documents of the range in the
        // key's order until the limit, as MongoDB's index scan gives them,
        // instead of every match of the query, sorted. Null when no index
        // serves it that way.
        private List<Integer> walkSorted(Document query, Document orderBy, int wanted) {
            String first = orderBy.keySet().iterator().next();
            if (!(orderBy.get(first) instanceof Number direction) || direction.doubleValue() <= 0) {
                return null;
            }
            Range range = Range.of(query, first);
            if (!range.bounded()) {
                return null;  // documents without the key could match, and the index has none of them
            }
            for (Index<Integer> index : getIndexes()) {
                if (index instanceof LeadingKeyIndex leading && leading.key().equals(first)) {
                    List<Integer> found = leading.walk(
                            range, position -> documentMatchesQuery(getDocument(position), query), wanted);
                    if (found != null) {
                        return found;
                    }
                }
            }
            return null;
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
