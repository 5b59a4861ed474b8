import type { MqttClient } from '../client/client.js';
import type { ConnectOptions } from '../client/types.js';
import type { Broker } from '../core/broker.js';
import type { LocalSide } from './bridge.js';

/** The bridges' view of a broker in this realm, reached through `connect` (an in-process pipe). */
export function brokerLocalSide(broker: Broker, brokerId: string, connect: (options: ConnectOptions) => Promise<MqttClient>): LocalSide {
  return {
    brokerId,
    connect,
    subscriptions: (clientId) => [...(broker.sessions.get(clientId)?.subscriptions.keys() ?? [])],
    pending: (clientId) => {
      const session = broker.sessions.get(clientId);
      return session ? session.queueLength + session.inflightCount : 0;
    },
  };
}
