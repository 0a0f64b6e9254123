// KafkaJS against runnel serve. kafka/clients_test.go runs it and checks
// what it prints (one JSON object a line) against the log directory:
//
//   node compat.js scenario      admin, produce with each codec, group
//                                consume and commit, offsets by time
//   node compat.js admin         a topic's metadata and offsets, a group's
//                                offset set and read back, the topic
//                                deleted
//   node compat.js topics        a group member of several topics, reading
//                                every record and fetching at least
//                                FETCHES times (KafkaJS splits a topic's
//                                partitions across a fetch's entries)
//   node compat.js member        a group member that prints its assignment
//                                until its standard input closes, then leaves
//   node compat.js delete-group  reset the group's offsets to the earliest,
//                                delete the group, list the groups
//   node compat.js sasl          authenticate with PLAIN, SCRAM-SHA-256 and
//                                -512, with the password and a wrong one
//   node compat.js tls           produce and list topics with SCRAM-SHA-512
//                                over TLS, trusting the CA in CA_FILE
//   node compat.js transaction   a transactional producer, which runnel
//                                refuses: it prints the error it failed
//                                with and what KafkaJS logged
//   node compat.js restart       an idempotent producer sending COUNT
//                                records one at a time, while the test
//                                kills the server under it and starts
//                                another
//
// The environment names the broker, the topics, the group and the
// timestamp of the records it produces (see clients_test.go).
'use strict';
const fs = require('fs');
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

const env = (name) => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};
const kafka = new Kafka({
  clientId: 'kafkajs-compat',
  brokers: [env('BROKER')],
  logLevel: logLevel.WARN,
  retry: { retries: 10 },
});
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const b64 = (buf) => (buf === null || buf === undefined ? null : Buffer.from(buf).toString('base64'));
// Short timings, which the test's server allows, keep the test short: a
// killed member is dropped after its session timeout, and KafkaJS notices
// a rebalance only in the heartbeat after a fetch returns.
const consumerOptions = () => ({
  groupId: env('GROUP'),
  sessionTimeout: 2000,
  heartbeatInterval: 300,
  rebalanceTimeout: 10000,
  maxWaitTimeInMs: 300,
});

async function scenario() {
  const topic = env('TOPIC');
  const newTopic = env('NEW_TOPIC');
  const ts = env('TIMESTAMP');
  const admin = kafka.admin();
  await admin.connect();

  // With two configs KafkaJS users set as Kafka's defaults, which runnel
  // honours without a setting of its own.
  await admin.createTopics({
    topics: [
      {
        topic: newTopic,
        numPartitions: 2,
        configEntries: [
          { name: 'retention.ms', value: '3600000' },
          { name: 'min.insync.replicas', value: '1' },
          { name: 'compression.type', value: 'producer' },
        ],
      },
    ],
  });
  const configs = await admin.describeConfigs({ resources: [{ type: 2, name: newTopic }], includeSynonyms: false });
  for (const e of configs.resources[0].configEntries) say({ event: 'config', name: e.configName, value: e.configValue });
  // alterConfigs is Kafka's AlterConfigs: the topic's whole set.
  await admin.alterConfigs({
    validateOnly: false,
    resources: [{ type: 2, name: newTopic, configEntries: [{ name: 'retention.ms', value: '7200000' }] }],
  });
  const altered = await admin.describeConfigs({ resources: [{ type: 2, name: newTopic }], includeSynonyms: false });
  for (const e of altered.resources[0].configEntries) say({ event: 'altered', name: e.configName, value: e.configValue });

  // KafkaJS itself compresses with gzip only (others need plugins).
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (const [codec, type] of [['none', CompressionTypes.None], ['gzip', CompressionTypes.GZIP]]) {
    const res = await producer.send({
      topic,
      acks: -1,
      compression: type,
      messages: [
        { partition: 0, key: `kafkajs-${codec}-a`, value: 'v', headers: { src: 'kafkajs' }, timestamp: ts },
        { partition: 0, key: `kafkajs-${codec}-b`, value: null, timestamp: ts },
      ],
    });
    // One result per partition, with the offset of its first record.
    for (const r of res) {
      for (let i = 0; i < 2; i++) {
        say({ event: 'produced', codec, partition: r.partition, offset: Number(r.baseOffset) + i, error: r.errorCode });
      }
    }
  }
  await producer.disconnect();

  // Read everything as the group, then commit where it stopped.
  const want = Number(env('WANT'));
  const consumer = kafka.consumer(consumerOptions());
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const next = new Map();
  let got = 0;
  await new Promise((resolve, reject) => {
    consumer
      .run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          say({
            event: 'record',
            partition,
            offset: Number(message.offset),
            key: b64(message.key),
            value: b64(message.value),
            headers: Object.entries(message.headers || {}).map(([k, v]) => [k, b64(v)]),
            timestamp: Number(message.timestamp),
          });
          next.set(partition, Number(message.offset) + 1);
          if (++got === want) {
            const offsets = [...next].map(([p, o]) => ({ topic, partition: p, offset: String(o) }));
            await consumer.commitOffsets(offsets);
            resolve();
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();

  const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, Number(ts));
  for (const o of byTime) say({ event: 'offset-for-time', partition: o.partition, offset: Number(o.offset) });
  const groups = await admin.listGroups();
  say({ event: 'groups', names: groups.groups.map((g) => g.groupId).sort() });
  const described = await admin.describeGroups([env('GROUP')]);
  say({ event: 'group', state: described.groups[0].state, members: described.groups[0].members.length });
  await admin.disconnect();
}

// TOPIC's partitions and offsets, GROUP's offset for partition 0 set to
// COMMIT and read back, and TOPIC deleted.
async function adminCalls() {
  const [topic, group] = [env('TOPIC'), env('GROUP')];
  const admin = kafka.admin();
  await admin.connect();
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  say({ event: 'partitions', partitions: md.topics[0].partitions.map((p) => p.partitionId).sort() });
  for (const o of await admin.fetchTopicOffsets(topic)) {
    say({ event: 'start', partition: o.partition, offset: Number(o.low) });
    say({ event: 'end', partition: o.partition, offset: Number(o.high) });
  }
  await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: env('COMMIT') }] });
  for (const p of (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0].partitions) {
    say({ event: 'committed', partition: p.partition, offset: Number(p.offset) });
  }
  await admin.deleteTopics({ topics: [topic] });
  say({ event: 'topics', names: (await admin.listTopics()).sort() });
  await admin.disconnect();
}

// Every record of the topics in TOPICS (comma-separated), as a group
// member, over at least FETCHES fetches: KafkaJS shuffles a fetch's
// partitions (KIP-74) and names a topic once for each run of its
// partitions, so most fetches of two topics name one twice. A crash of
// the consumer fails the step.
async function topics() {
  const [want, fetches] = [Number(env('WANT')), Number(env('FETCHES'))];
  const consumer = kafka.consumer(consumerOptions());
  let [got, fetched] = [0, 0];
  const finished = new Promise((resolve, reject) => {
    const check = () => got >= want && fetched >= fetches && resolve();
    consumer.on(consumer.events.FETCH, () => {
      fetched++;
      check();
    });
    consumer.on(consumer.events.CRASH, (e) => reject(e.payload.error));
    consumer.on(consumer.events.END_BATCH_PROCESS, check);
  });
  await consumer.connect();
  for (const topic of env('TOPICS').split(',')) await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      say({ event: 'record', name: topic, partition, offset: Number(message.offset), value: b64(message.value) });
      got++;
    },
  });
  await finished;
  await consumer.disconnect();
}

async function member() {
  const consumer = kafka.consumer(consumerOptions());
  const topic = env('TOPIC');
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    say({ event: 'assigned', partitions: (e.payload.memberAssignment[topic] || []).slice().sort() });
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async () => {} });
  say({ event: 'running' });
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.on('end', resolve));
  await consumer.disconnect(); // leaves the group
  say({ event: 'left' });
}

async function deleteGroup() {
  const admin = kafka.admin();
  await admin.connect();
  // resetOffsets commits -2 (earliest) through a member of the group.
  const [group, topic] = [env('GROUP'), env('TOPIC')];
  await admin.resetOffsets({ groupId: group, topic, earliest: true });
  for (const p of (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0].partitions) {
    say({ event: 'committed', partition: p.partition, offset: Number(p.offset) });
  }
  const res = await admin.deleteGroups([env('GROUP')]);
  say({ event: 'deleted', error: res[0].errorCode });
  const groups = await admin.listGroups();
  say({ event: 'groups', names: groups.groups.map((g) => g.groupId).sort() });
  await admin.disconnect();
}

// Each mechanism, with the right password and a wrong one.
async function sasl() {
  for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512']) {
    for (const password of [env('PASSWORD'), 'wrong']) {
      const admin = new Kafka({
        clientId: 'kafkajs-compat',
        brokers: [env('BROKER')],
        logLevel: logLevel.NOTHING,
        retry: { retries: 0 },
        sasl: { mechanism, username: env('USER_NAME'), password },
      }).admin();
      try {
        await admin.connect();
        say({ event: 'sasl', name: mechanism, value: password, names: (await admin.listTopics()).sort() });
      } catch (e) {
        say({ event: 'sasl-refused', name: mechanism, value: password, state: e.name });
      }
      await admin.disconnect();
    }
  }
}

// SCRAM-SHA-512 over TLS, the server's certificate checked against
// CA_FILE (and its address, which the certificate names).
async function tls() {
  const secure = new Kafka({
    clientId: 'kafkajs-compat',
    brokers: [env('BROKER')],
    logLevel: logLevel.WARN,
    ssl: { ca: [fs.readFileSync(env('CA_FILE'))] },
    sasl: { mechanism: 'scram-sha-512', username: env('USER_NAME'), password: env('PASSWORD') },
  });
  const producer = secure.producer();
  await producer.connect();
  await producer.send({ topic: env('TOPIC'), messages: [{ key: 'k', value: 'over tls' }] });
  await producer.disconnect();
  const admin = secure.admin();
  await admin.connect();
  say({ event: 'tls', names: (await admin.listTopics()).sort() });
  await admin.disconnect();
}

// A transactional producer sending a record to TOPIC. runnel offers no
// transactions: the step prints the error KafkaJS fails with and the
// broker errors it logged on the way, with few retries, so that a
// retriable error fails it soon too, but with a retriable one's log.
async function transaction() {
  const logged = [];
  const producer = new Kafka({
    clientId: 'kafkajs-compat',
    brokers: [env('BROKER')],
    retry: { retries: 3 },
    logCreator: () => ({ log }) => log.error && logged.push(log.error),
  }).producer({ transactionalId: 'compat-tx', idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const txn = await producer.transaction();
    await txn.send({ topic: env('TOPIC'), messages: [{ value: 'in a transaction' }] });
    await txn.commit();
    say({ event: 'committed' });
  } catch (e) {
    say({ event: 'refused', name: e.name, names: logged });
  }
  await producer.disconnect();
}

// One record a send, each acknowledged before the next: the test's first
// server stores the first and never answers, and is killed; KafkaJS
// retries it against the next server, which must answer with its offset.
async function restart() {
  const topic = env('TOPIC');
  const count = Number(env('COUNT'));
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    retry: { retries: 50, initialRetryTime: 50, maxRetryTime: 500 },
  });
  await producer.connect();
  for (let i = 0; i < count; i++) {
    const res = await producer.send({ topic, acks: -1, messages: [{ partition: 0, value: String(i) }] });
    say({ event: 'sent', name: String(i), offset: Number(res[0].baseOffset) });
  }
  await producer.disconnect();
}

const steps = { scenario, admin: adminCalls, topics, member, 'delete-group': deleteGroup, sasl, tls, transaction, restart };
const step = steps[process.argv[2]];
if (!step) {
  console.error(`usage: node compat.js ${Object.keys(steps).join('|')}`);
  process.exit(2);
}
step().then(
  () => say({ event: 'done' }),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
