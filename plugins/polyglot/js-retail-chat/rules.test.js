// Unit tests of the retail chat rules, without WebAssembly: `node --test`.
// Batches and candidate tables are built the way the host builds them
// (struct-of-arrays, interned names, UTF-8 byte offsets, BigInt for 64-bit
// integers), so the rules see exactly what the component sees.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BatchView, Names, basketPoints, matchAgents, prioritise } from './rules.js';

const ATTRIBUTES = ['note', 'basket-value', 'language'];
const SKILLS = ['retail', 'lang-de', 'lang-fr', 'returns'];

function names(table) {
  const cache = new Names((first) => {
    cache.calls.push(first);
    return table.slice(first);
  });
  cache.calls = [];
  return cache;
}

/** An item batch like the host builds; each item gives row fields, `attrs` and `skills`. */
function batch(...items) {
  const encoder = new TextEncoder();
  const b = { nowMs: 1_767_225_600_000n, rows: [], skills: [], attrKeys: [], attrValueEnds: [], attrValues: '' };
  let bytes = 0;
  items.forEach((item, i) => {
    const attrs = Object.entries(item.attrs ?? {});
    const skills = item.skills ?? [];
    b.rows.push({
      id: BigInt(item.id ?? i + 1),
      channel: 'chat',
      queue: 0,
      tier: item.tier ?? 0,
      contacts: item.contacts ?? 1,
      priority: 0,
      ageMs: 0n,
      dueInMs: 9_223_372_036_854_775_807n,
      value: 0,
      skillStart: b.skills.length,
      skillCount: skills.length,
      attrStart: b.attrKeys.length,
      attrCount: attrs.length,
    });
    b.skills.push(...skills);
    for (const [key, value] of attrs) {
      b.attrKeys.push(ATTRIBUTES.indexOf(key));
      b.attrValues += value;
      bytes += encoder.encode(value).length;
      b.attrValueEnds.push(bytes);
    }
  });
  return b;
}

/** A candidate table: each agent gives `id`, `skills` ({name: level}), `chats`, `idleMs`. */
function table(columns, ...agents) {
  const k = columns.length;
  const t = {
    agentIds: agents.map((a) => BigInt(a.id)),
    skillColumns: columns.map((name) => SKILLS.indexOf(name)),
    proficiency: new Uint8Array(agents.length * k),
    idleMs: agents.map((a) => BigInt(a.idleMs ?? 0)),
    occupancy: new Float32Array(agents.length),
    load: new Uint8Array(agents.length * 4),
  };
  agents.forEach((a, i) => {
    columns.forEach((name, j) => {
      t.proficiency[i * k + j] = a.skills?.[name] ?? 0;
    });
    t.load[i * 4 + 1] = a.chats ?? 0;
  });
  return t;
}

const view = (b) => new BatchView(b, names(ATTRIBUTES));
const match = (item, t) => matchAgents(view(batch(item)), t, names(SKILLS));

test('attribute values are sliced by UTF-8 byte offsets', () => {
  const b = batch({ attrs: { note: 'Größe 42 – €', language: 'de' } }, { attrs: { 'basket-value': '99.5' } });
  const v = view(b);
  assert.deepEqual(v.attributes(b.rows[0]), new Map([['note', 'Größe 42 – €'], ['language', 'de']]));
  assert.deepEqual(v.attributes(b.rows[1]), new Map([['basket-value', '99.5']]));
});

test('names are fetched once, then only the tail', () => {
  const table = ['a', 'b'];
  const cache = names(table);
  assert.equal(cache.id('b'), 1);
  assert.equal(cache.name(0), 'a');
  table.push('c');
  assert.equal(cache.id('c'), 2);
  assert.deepEqual(cache.calls, [0, 2]);
  assert.equal(cache.name(9), undefined);
});

test('priority adds tier, basket band and repeat contacts', () => {
  const [p] = prioritise(view(batch({ tier: 2, contacts: 3, attrs: { 'basket-value': '180.00' } })));
  assert.deepEqual(p, { priority: 40 + 25 + 30, queue: undefined, reason: 'gold, basket 180.00, contact 3' });
});

test('a first contact without a basket keeps only its tier points', () => {
  const decisions = prioritise(view(batch({ tier: 3 }, { tier: 0, attrs: { 'basket-value': 'n/a' } })));
  assert.deepEqual(decisions, [
    { priority: 60, queue: undefined, reason: 'platinum, basket none' },
    { priority: 0, queue: undefined, reason: 'standard, basket n/a' },
  ]);
});

test('basket bands and repeat cap', () => {
  assert.deepEqual(['49.99', '50', '150', '499', '500', '12000'].map(basketPoints), [0, 10, 25, 25, 40, 40]);
  const [p] = prioritise(view(batch({ contacts: 9 })));
  assert.equal(p.priority, 45);
});

test('match prefers the agent with fewer open chats', () => {
  const t = table(
    ['lang-de'],
    { id: 10, skills: { 'lang-de': 5 }, chats: 2, idleMs: 0 },
    { id: 11, skills: { 'lang-de': 5 }, chats: 0, idleMs: 30_000 },
    { id: 12, skills: { 'lang-de': 5 }, chats: 1, idleMs: 600_000 },
  );
  const result = match({ attrs: { language: 'de' } }, t);
  assert.equal(result.tag, 'scores');
  assert.deepEqual(Array.from(result.val), [50, 100.5, 85]);
});

test('language is a hard requirement', () => {
  const t = table(
    ['lang-de', 'lang-fr'],
    { id: 10, skills: { 'lang-fr': 9 }, chats: 0 },
    { id: 11, skills: { 'lang-de': 1 }, chats: 2 },
  );
  assert.deepEqual(Array.from(match({ attrs: { language: 'DE ' } }, t).val), [-1, 50]);
});

test('a language nobody was ever given vetoes every candidate', () => {
  const t = table(['lang-de'], { id: 10, skills: { 'lang-de': 9 } });
  assert.deepEqual(Array.from(match({ attrs: { language: 'pt' } }, t).val), [-1]);
});

test('required skill levels are hard requirements too', () => {
  const t = table(
    ['retail', 'returns'],
    { id: 10, skills: { retail: 9, returns: 2 } },
    { id: 11, skills: { retail: 4, returns: 6 } },
    { id: 12, skills: { retail: 3, returns: 9 } },
  );
  const skills = [{ skill: 0, level: 4 }, { skill: 3, level: 5 }];
  assert.deepEqual(Array.from(match({ skills }, t).val), [-1, 100, -1]);
});

test('no language attribute means any agent may take the chat', () => {
  const t = table([], { id: 10, chats: 3 }, { id: 11, chats: 1 });
  assert.deepEqual(Array.from(match({}, t).val), [25, 75]);
});
