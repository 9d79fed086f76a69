// The retail chat plugin's component entry point (`npm run build`).
//
// componentize-js turns this module into a component of the `retail-chat`
// world (wit/world.wit): each exported interface is an exported object named
// after it in camelCase (`prioritiser`, `matcher`) whose methods are the
// interface's functions. The host's imports come from
// `switchyard:routing/host@0.1.0`. The decisions themselves live in rules.js.

import { names } from 'switchyard:routing/host@0.1.0';
import { BatchView, Names, matchAgents, prioritise } from './rules.js';

// Name tables are cached for the life of the instance; ids never change. Top-level
// code runs when the component is *built* (componentize-js pre-initialises it), so
// it must not call the host: the caches fill on first use, inside a hook.
const skills = new Names((first) => names('skill', first));
const attributes = new Names((first) => names('attribute', first));

/** `switchyard:routing/prioritiser`: one priority per chat. */
export const prioritiser = {
  prioritise(items) {
    return prioritise(new BatchView(items, attributes));
  },
};

/** `switchyard:routing/matcher`: rank the candidate agents for one chat. */
export const matcher = {
  matchAgents(item, candidates) {
    return matchAgents(new BatchView(item, attributes), candidates, skills);
  },
};
